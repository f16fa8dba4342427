/* mizan schema [APP]: print the OpenAPI 3.1 document of an app. */
#include <stdio.h>

#include "cli.h"
#include "cmd.h"

int cmd_schema(int argc, char **argv) {
  mz_cli_line line;
  int pr = mz_cli_parse(mz_cli_find("schema"), argc, argv, &line);
  if (pr) return pr == 1 ? 0 : 2;
  const char *app = mz_cli_app("schema", &line, 0);
  if (!app) return 1;
  mz_host host;
  if (mz_host_init(&host, uv_default_loop(), MZ_MODE_PRODUCTION)) return 1;
  if (mz_host_load(&host, app)) return 1;
  const char *args[] = {app};
  int r = mz_cmd_call_lua(&host, "mizan.schema", "print", 1, args, NULL);
  mz_host_close(&host);
  return r ? 1 : 0;
}
