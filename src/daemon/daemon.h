/*
 * daemon.h - the entry point of `shoal serve`, called by the CLI.
 */
#ifndef SHOAL_DAEMON_H
#define SHOAL_DAEMON_H

/*
 * Runs the daemon with the arguments that follow `serve` (argv[0] is
 * "serve"). Parses options, creates the arena and the socket, prints one
 * line (capacity, socket, backing) and serves until SIGTERM or SIGINT.
 * Returns the process exit status: 0 after a clean shutdown, 2 for bad
 * options, 1 when it could not start (with a message on stderr).
 */
int daemon_main(int argc, char **argv);

#endif /* SHOAL_DAEMON_H */
