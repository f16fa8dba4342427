/*
 * mizan users create|set-password|list [options] [--app DIR]: manage the
 * built-in accounts of an app (its database comes from the app's config and
 * MIZAN_DATABASE). The password comes from MIZAN_PASSWORD or the first line
 * of standard input, never from the command line.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"

int cmd_users(int argc, char **argv) {
  const mz_cli_cmd *cmd = mz_cli_find("users");
  mz_cli_line line;
  if (mz_cli_parse(cmd, argc, argv, &line)) return 0; /* --help */
  if (argc == 0 || (strcmp(argv[0], "create") && strcmp(argv[0], "set-password") && strcmp(argv[0], "list"))) {
    if (argc) fprintf(stderr, "mizan users: unknown subcommand '%s'\n", argv[0]);
    mz_cli_help(cmd, stderr);
    return 2;
  }
  mz_cli_line at = {.nargs = 0};
  for (int i = 0; i + 1 < argc; i++)
    if (!strcmp(argv[i], "--app")) at.args[0] = argv[i + 1], at.nargs = 1;
  const char *app = mz_cli_app("users", &at, 0);
  if (!app) return 1;
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
