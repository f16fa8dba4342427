#!/usr/bin/env bash
# Client size: the generated kernel + React adapter for examples/todo
# (forms.ts and api.ts included, as an app ships them), minified and gzipped,
# beside tRPC's client + React Query built the same way (esbuild, ESM,
# minified, react external). Zod is external on both sides and measured on
# its own: tRPC apps use it too, for their inputs.
#   spec/bench/client_size.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts/deps.sh npm >/dev/null
cmake --preset release >/dev/null && cmake --build build -j"$(nproc)" >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
ln -s "$PWD/node_modules" "$work/node_modules"
build/mizan codegen --target react --out "$work/client" examples/todo 2>/dev/null
echo 'export * from "./client/react"; export * from "./client/api";' >"$work/mizan.ts"
cat >"$work/trpc.ts" <<'TS'
export { createTRPCClient, httpBatchLink } from "@trpc/client";
export { createTRPCReact } from "@trpc/react-query";
export { QueryClient, QueryClientProvider, useQuery, useMutation, useQueryClient } from "@tanstack/react-query";
TS
echo 'export { z } from "zod";' >"$work/zod.ts"
size() {
  node_modules/.bin/esbuild "$work/$1.ts" --bundle --minify --format=esm --log-level=error \
    --external:react --external:react-dom --external:zod --outfile="$work/$1.js"
  node -e 'const fs=require("fs"),z=require("zlib");const b=fs.readFileSync(process.argv[1]);
    console.log(b.length, z.gzipSync(b,{level:9}).length)' "$work/$1.js"
}
read -r m_min m_gz < <(size mizan)
read -r t_min t_gz < <(size trpc)
node_modules/.bin/esbuild "$work/zod.ts" --bundle --minify --format=esm --log-level=error --outfile="$work/zod.js"
z_gz=$(node -e 'console.log(require("zlib").gzipSync(require("fs").readFileSync(process.argv[1]),{level:9}).length)' "$work/zod.js")
printf 'mizan kernel + React adapter (todo): %d B min, %d B gzip\n' "$m_min" "$m_gz"
printf 'tRPC client + React Query:          %d B min, %d B gzip\n' "$t_min" "$t_gz"
printf 'zod (both sides, not counted above): %d B gzip\n' "$z_gz"
node -e 'console.log(`size ratio (tRPC+RQ / mizan, gzip): ${(process.argv[2]/process.argv[1]).toFixed(2)}x; goal <= 10240 B: ${process.argv[1] <= 10240 ? "met" : "missed"}`)' "$m_gz" "$t_gz"
