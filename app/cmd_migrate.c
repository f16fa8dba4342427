/*
 * mizan migrate [APP] | --status [APP] | new NAME [APP] [--lua]: the app's
 * migrations (lua/mizan/migrate_cli.lua parses the arguments and decides;
 * this only hands them over).
 */
#include <stdio.h>

#include "cmd.h"

int cmd_migrate(int argc, char **argv) {
  mz_host host;
  if (mz_host_init(&host, uv_default_loop(), MZ_MODE_PRODUCTION)) return 1;
  lua_State *L = host.L;
  mz_cmd_set_arg(L, NULL, argc, argv);
  int status = 1;
  int r = mz_cmd_call_lua(&host, "mizan.migrate_cli", "main", 0, NULL, &status);
  mz_host_close(&host);
  uv_run(uv_default_loop(), UV_RUN_NOWAIT); /* the close callbacks of what it owned */
  return r ? 1 : status;
}
