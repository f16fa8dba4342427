/* mizan codegen --target react|vue|svelte --out DIR [APP] [--check]:
 * write (or check) the typed TypeScript client of an app. The generator is
 * Lua (mizan.codegen); this only hands it the arguments. */
#include <stdio.h>

#include "cmd.h"

int cmd_codegen(int argc, char **argv) {
  mz_host host;
  if (mz_host_init(&host, uv_default_loop(), MZ_MODE_PRODUCTION)) return 1;
  int status = 0;
  int r = mz_cmd_call_lua(&host, "mizan.codegen", "main", argc, (const char **)argv, &status);
  mz_host_close(&host);
  return r ? 1 : status;
}
