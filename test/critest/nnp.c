/* nnp: the program of the locally built nonewprivs image (critest's NoNewPrivs tests). Installed
 * setuid root; prints the effective uid it runs with. */
#include <stdio.h>
#include <unistd.h>

int main(void) {
  printf("Effective uid: %d\n", (int)geteuid());
  return 0;
}
