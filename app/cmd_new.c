/* mizan new NAME: write a new app (see lua/mizan/scaffold.lua). */
#include <stdio.h>

#include "cmd.h"

int cmd_new(int argc, char **argv) {
  if (argc < 1) {
    fprintf(stderr, "usage: mizan new NAME\n");
    return 2;
  }
  mz_host host;
  if (mz_host_init(&host, uv_default_loop(), MZ_MODE_DEVELOPMENT)) return 1;
  const char *args[] = {argv[0]};
  int status = 1;
  int r = mz_cmd_call_lua(&host, "mizan.scaffold", "create", 1, args, &status);
  mz_host_close(&host);
  return r ? 1 : status;
}
