/* mizan: CLI dispatch. One cmd_<name>.c per command. */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

static void usage(FILE *f) {
  fprintf(f,
          "mizan %s: serve Lua server functions to a typed TypeScript client\n\n"
          "usage:\n"
          "  mizan new NAME             write a new app in folder NAME\n"
          "  mizan build [APP] -o FILE  one executable with the app inside (FILE serve runs it)\n"
          "  mizan serve [APP]          run the app in production mode\n"
          "  mizan dev [APP]            run the app in development mode (tracebacks in errors,\n"
          "                             output validation)\n"
          "  mizan schema [APP]         print the OpenAPI 3.1 document\n"
          "  mizan codegen --target react|vue|svelte --out DIR [APP] [--check]\n"
          "                             write the typed TypeScript client (--check: fail if\n"
          "                             DIR is out of date)\n"
          "  mizan test [SPECS...]      run busted specs inside the host\n"
          "  mizan lua FILE [ARGS...]   run a Lua script inside the host\n"
          "  mizan migrate [APP]        apply the pending migrations (--status: list them;\n"
          "                             new NAME [--lua]: write the next numbered file)\n"
          "  mizan jobs list|retry ID|cancel ID [APP]\n"
          "                             the app's durable jobs (state, attempts, next run, last error)\n"
          "  mizan users create|set-password|list [--app APP]\n"
          "                             manage accounts (password from MIZAN_PASSWORD or stdin)\n"
          "  mizan help migrate         how migrations work\n"
          "  mizan help jobs            the jobs command\n"
          "  mizan help config [--markdown]\n"
          "                             every option: its mizan.config{} name, environment\n"
          "                             variable, default and meaning\n"
          "  mizan version              print the version\n\n"
          "APP is a folder holding app.lua (default: the current folder).\n",
          MIZAN_VERSION);
}

/* `mizan help config [--markdown]`: the options table (lua/mizan/options.lua), printed. */
static int help_config(const char *format) {
  mz_host host;
  if (mz_host_init(&host, uv_default_loop(), MZ_MODE_PRODUCTION)) return 1;
  const char *args[] = {format};
  int r = mz_cmd_call_lua(&host, "mizan.config", "print_help", format ? 1 : 0, args, NULL);
  mz_host_close(&host);
  return r ? 1 : 0;
}

/* A built executable: `FILE serve` runs the app inside it. */
static int embedded_main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";
  char app[] = "@embedded";
  char *args[] = {app};
  if (!strcmp(cmd, "serve")) return cmd_serve(1, args, MZ_MODE_PRODUCTION);
  if (!strcmp(cmd, "version")) {
    printf("mizan %s (with an app inside)\n", MIZAN_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "help") && argc > 2 && !strcmp(argv[2], "config")) return help_config(argc > 3 ? argv[3] : NULL);
  if (!strcmp(cmd, "migrate")) {
    /* the migrations inside this executable, against its database */
    char *margv[64];
    int n = 0;
    for (int i = 2; i < argc && n < 62; i++) margv[n++] = argv[i];
    margv[n++] = app;
    return cmd_migrate(n, margv);
  }
  if (!strcmp(cmd, "jobs")) {
    /* the jobs in this executable's database */
    char *jargv[64];
    int n = 0;
    for (int i = 2; i < argc && n < 62; i++) jargv[n++] = argv[i];
    jargv[n++] = app;
    return cmd_jobs(n, jargv);
  }
  if (!strcmp(cmd, "users")) {
    char *uargv[64];
    int n = 0;
    for (int i = 2; i < argc && n < 60; i++) uargv[n++] = argv[i];
    uargv[n++] = "--app";
    uargv[n++] = app;
    return cmd_users(n, uargv);
  }
  fprintf(stderr,
          "%s: a Mizan app, built with mizan build.\n\n"
          "  %s serve      serve it (MIZAN_SECRET, MIZAN_LISTEN, MIZAN_WORKERS, ... configure it)\n"
          "  %s help config  every option and its environment variable\n"
          "  %s migrate [--status]  apply (or list) its pending migrations\n"
          "  %s jobs list|retry ID|cancel ID  its durable jobs\n"
          "  %s users ...  manage its accounts\n"
          "  %s version\n",
          argv[0], argv[0], argv[0], argv[0], argv[0], argv[0], argv[0]);
  return cmd[0] ? 2 : 0;
}

int main(int argc, char **argv) {
  if (mz_app_payload_detect()) return embedded_main(argc, argv);
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "serve")) return cmd_serve(argc - 2, argv + 2, MZ_MODE_PRODUCTION);
  if (!strcmp(cmd, "dev")) return cmd_serve(argc - 2, argv + 2, MZ_MODE_DEVELOPMENT);
  if (!strcmp(cmd, "schema")) return cmd_schema(argc - 2, argv + 2);
  if (!strcmp(cmd, "test")) return cmd_test(argc - 2, argv + 2);
  if (!strcmp(cmd, "lua")) return cmd_lua(argc - 2, argv + 2);
  if (!strcmp(cmd, "users")) return cmd_users(argc - 2, argv + 2);
  if (!strcmp(cmd, "migrate")) return cmd_migrate(argc - 2, argv + 2);
  if (!strcmp(cmd, "jobs")) return cmd_jobs(argc - 2, argv + 2);
  if (!strcmp(cmd, "new")) return cmd_new(argc - 2, argv + 2);
  if (!strcmp(cmd, "build")) return cmd_build(argc - 2, argv + 2);
  if (!strcmp(cmd, "codegen")) return cmd_codegen(argc - 2, argv + 2);
  if (!strcmp(cmd, "version") || !strcmp(cmd, "--version")) {
    printf("mizan %s\n", MIZAN_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "help") && argc > 2 && !strcmp(argv[2], "config")) return help_config(argc > 3 ? argv[3] : NULL);
  if (!strcmp(cmd, "help") && argc > 2 && !strcmp(argv[2], "migrate")) {
    char help[] = "--help";
    char *hargv[] = {help};
    return cmd_migrate(1, hargv);
  }
  if (!strcmp(cmd, "help") && argc > 2 && !strcmp(argv[2], "jobs")) {
    char help[] = "--help";
    char *hargv[] = {help};
    return cmd_jobs(1, hargv);
  }
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
    usage(stdout);
    return 0;
  }
  fprintf(stderr, "mizan: unknown command '%s'\n\n", cmd);
  usage(stderr);
  return 2;
}
