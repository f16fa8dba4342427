/* mizan lua FILE [ARGS...]: run a script with the framework and codec loaded. */
#include <lauxlib.h>
#include <stdio.h>

#include "cli.h"
#include "cmd.h"

int cmd_lua(int argc, char **argv) {
  mz_cli_line line;
  if (mz_cli_parse(mz_cli_find("lua"), argc, argv, &line)) return 0; /* --help */
  if (argc < 1) {
    fprintf(stderr, "usage: mizan lua FILE [ARGS...]\n");
    return 2;
  }
  mz_host host;
  if (mz_host_init(&host, uv_default_loop(), MZ_MODE_TEST)) return 1;
  mz_host_enable_testkit(&host);
  lua_State *L = host.L;
  mz_cmd_set_arg(L, argv[0], argc - 1, argv + 1);
  const char *args[] = {argv[0]};
  int r = mz_cmd_call_lua(&host, "mizan.testing", "run_script", 1, args, NULL);
  mz_host_close(&host);
  return r ? 1 : 0;
}
