/*
 * mizan users create|set-password|list [options] [--app DIR]: manage the
 * built-in accounts of an app (its database comes from the app's config and
 * MIZAN_DATABASE). The password comes from MIZAN_PASSWORD or the first line
 * of standard input, never from the command line.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

int cmd_users(int argc, char **argv) {
  const char *app = ".";
  for (int i = 0; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--app")) app = argv[i + 1];
  mz_host host;
  if (mz_host_init(&host, uv_default_loop(), MZ_MODE_PRODUCTION)) return 1;
  if (mz_host_load(&host, app)) return 1;
  lua_State *L = host.L;
  mz_cmd_set_arg(L, NULL, argc, argv);
  int status = 1;
  int r = mz_cmd_call_lua(&host, "mizan.users_cli", "main", 0, NULL, &status);
  mz_host_close(&host);
  return r ? 1 : status;
}
