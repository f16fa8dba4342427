/* mizan codegen --target react|vue|svelte --out DIR [APP] [--check]:
 * write (or check) the typed TypeScript client of an app. The generator is
 * Lua (mizan.codegen); this only hands it the arguments. */
#include <stdio.h>

#include <string.h>

#include "cli.h"
#include "cmd.h"

int cmd_codegen(int argc, char **argv) {
  mz_cli_line line;
  int pr = mz_cli_parse(mz_cli_find("codegen"), argc, argv, &line);
  if (pr) return pr == 1 ? 0 : 2;
  const char *target = line.opt[0] ? line.opt[0] : "react", *out = line.opt[1];
  if (strcmp(target, "react") && strcmp(target, "vue") && strcmp(target, "svelte")) {
    return mz_cli_error("codegen", "unknown --target '%s' (react, vue or svelte)", target);
  }
  if (!out) {
    return mz_cli_error("codegen", "where to? give --out DIR%s", "");
  }
  const char *app = mz_cli_app("codegen", &line, 0);
  if (!app) return 1;
  const char *args[] = {"--target", target, "--out", out, app, line.opt[2] ? "--check" : NULL};
  mz_host host;
  if (mz_host_init(&host, uv_default_loop(), MZ_MODE_PRODUCTION)) return 1;
  int status = 0;
  int r = mz_cmd_call_lua(&host, "mizan.codegen", "main", line.opt[2] ? 6 : 5, args, &status);
  mz_host_close(&host);
  return r ? 1 : status;
}
