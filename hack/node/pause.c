/* kubevox's pod sandbox ("pause") process: holds the pod's namespaces open, reaps the zombies
 * that end up with it as PID 1, and exits on SIGINT or SIGTERM. Built static, the only file of
 * an image FROM scratch. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void on_stop(int sig) {
  (void)sig;
  _exit(0);
}

static void on_child(int sig) {
  (void)sig;
  /* Reap every child that has exited; there may be several per signal. */
  while (waitpid(-1, NULL, WNOHANG) > 0) {
  }
}

static int handle(int sig, void (*fn)(int), int flags) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = fn;
  sa.sa_flags = flags;
  sigemptyset(&sa.sa_mask);
  return sigaction(sig, &sa, NULL);
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "-v") == 0) {
    puts("kubevox-pause");
    return 0;
  }
  if (getpid() != 1) {
    fprintf(stderr, "kubevox-pause: warning: not PID 1, zombies are not mine to reap\n");
  }
  if (handle(SIGINT, on_stop, 0) < 0 || handle(SIGTERM, on_stop, 0) < 0 ||
      handle(SIGCHLD, on_child, SA_NOCLDSTOP | SA_RESTART) < 0) {
    perror("kubevox-pause: sigaction");
    return 1;
  }
  for (;;) {
    pause();
  }
}
