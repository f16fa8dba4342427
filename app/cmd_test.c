/*
 * mizan test [SPECS...]: run busted inside the host, so that specs exercise
 * the real C core (codec, scheduler, sockets) rather than a stand-in.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "cmd.h"

int cmd_test(int argc, char **argv) {
  mz_cli_line line;
  if (mz_cli_parse(mz_cli_find("test"), argc, argv, &line)) return 0; /* --help */
  struct rlimit rl;
  rlim_t was;
  (void)mz_cmd_raise_nofile(&rl, &was); /* specs open many sockets, as clients do */
  mz_host host;
  if (mz_host_init(&host, uv_default_loop(), MZ_MODE_TEST)) return 1;
  mz_host_enable_testkit(&host);
  lua_State *L = host.L;
  /* busted reads its command line from the global `arg` */
  mz_cmd_set_arg(L, "mizan test", argc, argv);
  int status = 1;
  int r = mz_cmd_call_lua(&host, "mizan.testing", "run_busted", 0, NULL, &status);
  /* close the state so every finaliser runs: leak checkers then see a clean exit */
  mz_host_close(&host);
  uv_run(uv_default_loop(), UV_RUN_NOWAIT); /* the close callbacks of what it owned */
  uv_loop_close(uv_default_loop());
  return r ? 1 : status;
}
