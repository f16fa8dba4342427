/*
 * mizan jobs list|retry ID|cancel ID [APP]: the app's durable jobs
 * (lua/mizan/jobs_cli.lua parses the arguments and decides; this only
 * hands them over).
 */
#include <stdio.h>

#include "cmd.h"

int cmd_jobs(int argc, char **argv) {
  mz_host host;
  if (mz_host_init(&host, uv_default_loop(), MZ_MODE_PRODUCTION)) return 1;
  lua_State *L = host.L;
  lua_createtable(L, argc, 0);
  for (int i = 0; i < argc; i++) {
    lua_pushstring(L, argv[i]);
    lua_rawseti(L, -2, i + 1);
  }
  lua_setglobal(L, "arg");
  int status = 1;
  int r = mz_cmd_call_lua(&host, "mizan.jobs_cli", "main", 0, NULL, &status);
  mz_host_close(&host);
  uv_run(uv_default_loop(), UV_RUN_NOWAIT); /* the close callbacks of what it owned */
  return r ? 1 : status;
}
