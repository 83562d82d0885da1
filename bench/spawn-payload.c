/* The benchmark payload: signals "started" by writing one byte to the fd named in argv[1]. Static. */
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    int fd = atoi(argv[1]);
    return write(fd, "s", 1) == 1 ? 0 : 1;
}
