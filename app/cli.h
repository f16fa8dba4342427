/*
 * The command line, declared: each command is one mz_cli_cmd (its usage, its
 * options, how many plain arguments it takes, its help text) and one parser
 * reads every command's argv the same way. So every command has --help with
 * its own options, `mizan help CMD` prints the same text, and an unknown
 * option or an extra argument is an error that names it (exit 2).
 */
#ifndef MZ_CLI_H
#define MZ_CLI_H

#include <stdio.h>

#define MZ_CLI_MAX_OPTS 8
#define MZ_CLI_MAX_ARGS 8

/** One option: `--name VALUE` (arg set) or a flag (arg NULL). */
typedef struct {
  const char *name;  /* "--listen" */
  const char *alias; /* "-o", or NULL */
  const char *arg;   /* "ADDR", or NULL for a flag */
  const char *help;
} mz_cli_opt;

typedef struct {
  const char *name;    /* "dev" */
  const char *usage;   /* what follows "mizan dev" */
  const char *summary; /* one line, for `mizan help` */
  const char *details; /* more lines, or NULL */
  mz_cli_opt opts[MZ_CLI_MAX_OPTS];
  int max_args; /* plain arguments it takes; -1: any (handed on as they are) */
} mz_cli_cmd;

/** What a command line said. Values point into argv. */
typedef struct {
  const char *opt[MZ_CLI_MAX_OPTS]; /* per option: its value, "1" for a flag, NULL when absent */
  const char *args[MZ_CLI_MAX_ARGS];
  int nargs;
} mz_cli_line;

/**
 * Parse argv (the words after the command's name) against `cmd`. Returns 0;
 * 1 when --help (or -h) was asked and the help is printed (exit 0); 2 when
 * the line is wrong: the message, naming the word, and the usage are printed
 * on stderr (exit 2).
 */
int mz_cli_parse(const mz_cli_cmd *cmd, int argc, char **argv, mz_cli_line *line);

/**
 * Say what is wrong with a command line: "mizan NAME: " + fmt (with `word`
 * for its one %s) and the usage, on stderr. Returns 2, the exit status.
 */
int mz_cli_error(const char *name, const char *fmt, const char *word);

/** Print a command's help: usage, summary, options, details. */
void mz_cli_help(const mz_cli_cmd *cmd, FILE *f);

/** The command named `name`, or NULL. */
const mz_cli_cmd *mz_cli_find(const char *name);

/** Every command, NULL-terminated, in the order `mizan help` lists them. */
extern const mz_cli_cmd *const mz_cli_commands[];

/**
 * The app folder of a command line (its first plain argument, or "."),
 * checked: when it holds no app.lua, say which path was looked in and
 * return NULL.
 */
const char *mz_cli_app(const char *cmd, const mz_cli_line *line, int index);

#endif
