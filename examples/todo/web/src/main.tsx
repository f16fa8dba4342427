import { StrictMode } from "react";
import { createRoot } from "react-dom/client";
import { GlobalContextLoader, MizanProvider } from "./mizan/react";
import { App } from "./App";
import "./styles.css";

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <MizanProvider>
      <GlobalContextLoader>
        <App />
      </GlobalContextLoader>
    </MizanProvider>
  </StrictMode>,
);
