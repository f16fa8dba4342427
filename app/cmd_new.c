/* mizan new NAME: write a new app (see lua/mizan/scaffold.lua). */
#include <stdio.h>

#include "cli.h"
#include "cmd.h"

int cmd_new(int argc, char **argv) {
  mz_cli_line line;
  int pr = mz_cli_parse(mz_cli_find("new"), argc, argv, &line);
  if (pr) return pr == 1 ? 0 : 2;
  if (line.nargs < 1) {
    return mz_cli_error("new", "which folder? give NAME%s", "");
  }
  mz_host host;
  if (mz_host_init(&host, uv_default_loop(), MZ_MODE_DEVELOPMENT)) return 1;
  const char *args[] = {line.args[0]};
  int status = 1;
  int r = mz_cmd_call_lua(&host, "mizan.scaffold", "create", 1, args, &status);
  mz_host_close(&host);
  return r ? 1 : status;
}
