/* mizan: CLI dispatch. One cmd_<name>.c per command. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cmd.h"

/* `mizan help`: every command, from the declarations in cli.c. */
static void usage(FILE *f) {
  fprintf(f, "mizan %s: serve Lua server functions to a typed TypeScript client\n\nusage:\n", MIZAN_VERSION);
  for (int i = 0; mz_cli_commands[i]; i++) {
    const mz_cli_cmd *c = mz_cli_commands[i];
    fprintf(f, "  mizan %s %s\n      %s\n", c->name, c->usage, c->summary);
  }
  fprintf(f, "\nAPP is a folder holding app.lua (default: the current folder).\n"
             "mizan help CMD (or mizan CMD --help) tells more about one command.\n");
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

/* `mizan help [CMD]`: the list, one command's help, or the options
   (config). The commands that read their own command line in Lua (migrate,
   jobs, users) print their fuller help themselves. */
static int help(int argc, char **argv) {
  if (argc == 0) {
    usage(stdout);
    return 0;
  }
  const char *name = argv[0];
  if (!strcmp(name, "config")) {
    if (argc > 2 || (argc == 2 && strcmp(argv[1], "--markdown"))) {
      fprintf(stderr, "mizan help config: unexpected argument '%s' (usage: mizan help config [--markdown])\n", argv[1]);
      return 2;
    }
    return help_config(argc > 1 ? argv[1] : NULL);
  }
  if (argc > 1) {
    fprintf(stderr, "mizan help: unexpected argument '%s' (usage: mizan help [CMD])\n", argv[1]);
    return 2;
  }
  char flag[] = "--help";
  char *hargv[] = {flag};
  if (!strcmp(name, "migrate")) return cmd_migrate(1, hargv);
  if (!strcmp(name, "jobs")) return cmd_jobs(1, hargv);
  const mz_cli_cmd *c = mz_cli_find(name);
  if (!c) {
    fprintf(stderr, "mizan help: no command named '%s'\n\n", name);
    usage(stderr);
    return 2;
  }
  mz_cli_help(c, stdout);
  return 0;
}

/* Run a command on the app inside this executable: its words, then the app
   (after `flag` when the command names its app with one). */
static int with_embedded_app(int (*run)(int, char **), int argc, char **argv, const char *flag) {
  char app[] = "@embedded", flagbuf[16];
  char *args[64];
  int n = 0;
  for (int i = 2; i < argc && n < 61; i++) args[n++] = argv[i];
  if (flag) {
    snprintf(flagbuf, sizeof flagbuf, "%s", flag);
    args[n++] = flagbuf;
  }
  args[n++] = app;
  return run(n, args);
}

/* A built executable: `FILE serve` runs the app inside it. */
static int serve_production(int argc, char **argv) { return cmd_serve(argc, argv, MZ_MODE_PRODUCTION); }

static int embedded_main(int argc, char **argv) {
  const char *cmd = argc > 1 ? argv[1] : "";
  if (!strcmp(cmd, "serve")) return with_embedded_app(serve_production, argc, argv, NULL); /* --port, --listen too */
  if (!strcmp(cmd, "version")) {
    printf("mizan %s (with an app inside)\n", MIZAN_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "help") && argc > 2 && !strcmp(argv[2], "config")) return help_config(argc > 3 ? argv[3] : NULL);
  /* the migrations, jobs and accounts of the app inside, in its database */
  if (!strcmp(cmd, "migrate")) return with_embedded_app(cmd_migrate, argc, argv, NULL);
  if (!strcmp(cmd, "jobs")) return with_embedded_app(cmd_jobs, argc, argv, NULL);
  if (!strcmp(cmd, "users")) return with_embedded_app(cmd_users, argc, argv, "--app");
  fprintf(stderr,
          "%s: a Mizan app, built with mizan build.\n\n"
          "  %s serve [--listen ADDR | --port N]  serve it (MIZAN_SECRET, MIZAN_WORKERS, ... configure it)\n"
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
    mz_cli_line line;
    int pr = mz_cli_parse(mz_cli_find("version"), argc - 2, argv + 2, &line);
    if (pr) return pr == 1 ? 0 : 2;
    printf("mizan %s\n", MIZAN_VERSION);
    return 0;
  }
  if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) return help(argc - 2, argv + 2);
  fprintf(stderr, "mizan: unknown command '%s'\n\n", cmd);
  usage(stderr);
  return 2;
}
