/*
 * webd: the web server of the locally built critest images (no registry here). It stands in for
 * nginx / httpd the way critest uses them: an HTTP 200 on a port, a master process whose
 * /proc/<pid>/cmdline says "master process" and whose comm is its file name (`pidof nginx`), a pid
 * file, a start-up line in the container log naming the server, and a clean exit on SIGTERM.
 * The HTTP serving itself is busybox httpd, run as the master's child.
 *
 *   webd PORT DOCROOT PIDFILE|- TITLE|-
 */
#define _GNU_SOURCE
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child = -1;

static void on_term(int sig) {
  (void)sig;
  if (child > 0) kill(child, SIGTERM);
  _exit(0);
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s PORT DOCROOT PIDFILE|- TITLE|-\n", argv[0]);
    return 2;
  }
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n < 0) {
    perror("readlink /proc/self/exe");
    return 1;
  }
  exe[n] = 0;
  if (strcmp(argv[4], "-") != 0 && strcmp(argv[0], argv[4]) != 0) {
    argv[0] = argv[4]; /* nginx-style process title: the cmdline becomes "<TITLE> PORT ..." */
    execv(exe, argv);
    perror("execv");
    return 1;
  }
  if (strcmp(argv[3], "-") != 0) {
    FILE *f = fopen(argv[3], "w");
    if (!f) {
      perror(argv[3]);
      return 1;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGQUIT, &sa, NULL);
  printf("%s: serving HTTP on port %s from %s (busybox httpd)\n", basename(exe), argv[1], argv[2]);
  fflush(stdout);
  pid_t c = fork();
  if (c < 0) {
    perror("fork");
    return 1;
  }
  if (c == 0) {
    execl("/bin/busybox", "httpd", "-f", "-p", argv[1], "-h", argv[2], (char *)NULL);
    perror("exec /bin/busybox httpd");
    _exit(127);
  }
  child = c;
  for (;;) {
    int st;
    pid_t p = waitpid(-1, &st, 0);
    if (p == c) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    if (p < 0) return 1;
  }
}
