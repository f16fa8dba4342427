/* The command line: every command's declaration and one parser (cli.h). */
#include "cli.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define LISTEN_OPTS                                                                                  \
  {"--listen", NULL, "ADDR", "address:port to serve on (overrides MIZAN_LISTEN)"},                    \
  {"--port", "-p", "N", "serve on 127.0.0.1:N (overrides MIZAN_LISTEN)"}

static const mz_cli_cmd cmd_new = {
    "new", "NAME", "write a new app in folder NAME (a query, a context, a mutation, a spec)", NULL, {{0}}, 1};
static const mz_cli_cmd cmd_dev = {
    "dev", "[APP] [--listen ADDR | --port N]",
    "run the app in development mode: hot reload, tracebacks in errors, output validation",
    "A save reloads the app in a fresh Lua state; pending migrations are applied on start and\n"
    "on save. A secret is generated into APP/.mizan/secret on first run.",
    {LISTEN_OPTS},
    1};
static const mz_cli_cmd cmd_serve = {
    "serve", "[APP] [--listen ADDR | --port N]", "run the app in production mode: a master and its workers",
    "Needs MIZAN_SECRET. MIZAN_WORKERS sets the workers (default: one per core). SIGHUP reloads\n"
    "the code one worker at a time; SIGTERM drains and exits. Refuses to start while migrations\n"
    "are pending, unless MIZAN_MIGRATE=auto.",
    {LISTEN_OPTS},
    1};
static const mz_cli_cmd cmd_build = {"build",
                                     "[APP] -o FILE",
                                     "write one executable with the app inside (FILE serve runs it)",
                                     NULL,
                                     {{"--out", "-o", "FILE", "the executable to write"}},
                                     1};
static const mz_cli_cmd cmd_schema = {"schema", "[APP]", "print the app's OpenAPI 3.1 document (deterministic)",
                                      NULL, {{0}}, 1};
static const mz_cli_cmd cmd_codegen = {
    "codegen", "--target react|vue|svelte --out DIR [APP] [--check]", "write the typed TypeScript client",
    NULL,
    {{"--target", "-t", "NAME", "react, vue or svelte"},
     {"--out", "-o", "DIR", "the folder to write"},
     {"--check", NULL, NULL, "write nothing; fail (exit 1) when DIR is out of date"}},
    1};
static const mz_cli_cmd cmd_test = {"test", "[SPECS...] [BUSTED OPTIONS]",
                                    "run busted specs inside the host, against the real C core",
                                    "Every other word is handed to busted as it is.",
                                    {{0}}, -1};
static const mz_cli_cmd cmd_lua = {"lua", "FILE [ARGS...]", "run a Lua script inside the host (arg[1..] are ARGS)",
                                   NULL, {{0}}, -1};
static const mz_cli_cmd cmd_migrate = {"migrate", "[APP] | --status [APP] | new NAME [APP] [--lua]",
                                       "apply the pending migrations (--status: list them; new: write the next file)",
                                       NULL, {{0}}, -1};
static const mz_cli_cmd cmd_jobs = {"jobs", "list|retry ID|cancel ID [APP]",
                                    "the app's durable jobs: state, attempts, next run, last error", NULL, {{0}}, -1};
static const mz_cli_cmd cmd_users = {
    "users", "create|set-password|list [--app APP]", "manage the app's accounts",
    "  mizan users create USERNAME [--email E] [--staff] [--superuser] [--app APP]\n"
    "  mizan users set-password USERNAME [--app APP]\n"
    "  mizan users list [--app APP]\n"
    "The password comes from MIZAN_PASSWORD or the first line of standard input, never from\n"
    "the command line. The database is the app's (its config, MIZAN_DATABASE).",
    {{0}}, -1};
static const mz_cli_cmd cmd_help = {"help", "[CMD | config [--markdown]]",
                                    "this list, a command's help, or every option (config)", NULL, {{0}}, 2};
static const mz_cli_cmd cmd_version = {"version", "", "print the version", NULL, {{0}}, 0};

const mz_cli_cmd *const mz_cli_commands[] = {&cmd_new,  &cmd_dev,     &cmd_serve, &cmd_build, &cmd_schema,
                                             &cmd_codegen, &cmd_test, &cmd_lua,   &cmd_migrate, &cmd_jobs,
                                             &cmd_users, &cmd_help,   &cmd_version, NULL};

const mz_cli_cmd *mz_cli_find(const char *name) {
  for (int i = 0; mz_cli_commands[i]; i++)
    if (!strcmp(mz_cli_commands[i]->name, name)) return mz_cli_commands[i];
  return NULL;
}

void mz_cli_help(const mz_cli_cmd *cmd, FILE *f) {
  fprintf(f, "usage: mizan %s%s%s\n\n%s.\n", cmd->name, cmd->usage[0] ? " " : "", cmd->usage, cmd->summary);
  if (cmd->opts[0].name) {
    fprintf(f, "\noptions:\n");
    for (const mz_cli_opt *o = cmd->opts; o < cmd->opts + MZ_CLI_MAX_OPTS && o->name; o++) {
      char left[64];
      snprintf(left, sizeof left, "%s%s%s%s%s", o->alias ? o->alias : "", o->alias ? ", " : "", o->name,
               o->arg ? " " : "", o->arg ? o->arg : "");
      fprintf(f, "  %-22s %s\n", left, o->help);
    }
    fprintf(f, "  %-22s %s\n", "-h, --help", "this help");
  }
  if (cmd->details) fprintf(f, "\n%s\n", cmd->details);
}

int mz_cli_error(const char *name, const char *fmt, const char *word) {
  const mz_cli_cmd *cmd = mz_cli_find(name);
  fprintf(stderr, "mizan %s: ", cmd->name);
  fprintf(stderr, fmt, word);
  fprintf(stderr, "\nusage: mizan %s %s (mizan %s --help)\n", cmd->name, cmd->usage, cmd->name);
  return 2;
}

int mz_cli_parse(const mz_cli_cmd *cmd, int argc, char **argv, mz_cli_line *line) {
  memset(line, 0, sizeof *line);
  if (cmd->max_args < 0) { /* handed on as they are; only a leading --help is ours */
    if (argc > 0 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
      mz_cli_help(cmd, stdout);
      return 1;
    }
    return 0;
  }
  for (int i = 0; i < argc; i++) {
    const char *w = argv[i];
    if (!strcmp(w, "--help") || !strcmp(w, "-h")) {
      mz_cli_help(cmd, stdout);
      return 1;
    }
    if (w[0] == '-' && w[1]) {
      const char *eq = strchr(w, '=');
      size_t n = eq ? (size_t)(eq - w) : strlen(w);
      int k = -1;
      for (int j = 0; j < MZ_CLI_MAX_OPTS && cmd->opts[j].name; j++) {
        const mz_cli_opt *o = &cmd->opts[j];
        if ((strlen(o->name) == n && !strncmp(o->name, w, n)) || (o->alias && strlen(o->alias) == n && !strncmp(o->alias, w, n)))
          k = j;
      }
      if (k < 0) return mz_cli_error(cmd->name, "unknown option '%s'", w);
      const mz_cli_opt *o = &cmd->opts[k];
      if (line->opt[k]) return mz_cli_error(cmd->name, "option '%s' given twice", o->name);
      if (!o->arg) {
        if (eq) return mz_cli_error(cmd->name, "option '%s' takes no value", o->name);
        line->opt[k] = "1";
      } else if (eq) {
        line->opt[k] = eq + 1;
      } else if (i + 1 < argc) {
        line->opt[k] = argv[++i];
      } else {
        return mz_cli_error(cmd->name, "option '%s' needs a value", o->name);
      }
      continue;
    }
    if (line->nargs >= cmd->max_args || line->nargs >= MZ_CLI_MAX_ARGS)
      return mz_cli_error(cmd->name, "unexpected argument '%s'", w);
    line->args[line->nargs++] = w;
  }
  return 0;
}

const char *mz_cli_app(const char *cmd, const mz_cli_line *line, int index) {
  const char *app = line->nargs > index ? line->args[index] : ".";
  if (app[0] == '@') return app; /* the app inside a built executable */
  char path[PATH_MAX];
  struct stat st;
  snprintf(path, sizeof path, "%s/app.lua", app);
  if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) return app;
  char abs[PATH_MAX];
  const char *shown = realpath(app, abs) ? abs : app;
  if (stat(app, &st) != 0)
    fprintf(stderr, "mizan %s: no app folder at %s (APP is a folder holding app.lua)\n", cmd, shown);
  else
    fprintf(stderr, "mizan %s: no app.lua in %s (APP is a folder holding app.lua)\n", cmd, shown);
  return NULL;
}
