/* send_floor: what one small write to a loopback TCP socket costs the writer
 * on this machine, with nothing of Herald in the way: the floor under the
 * server CPU per delivered message of bench/compare.sh at low publish rates,
 * where every delivery is its own write.
 *
 *   build/bench/send_floor [CONNECTIONS] [ROUNDS] [BYTES]
 *
 * Opens CONNECTIONS (default 5000) TCP connections to itself on 127.0.0.1,
 * a reader thread drains them through epoll (as a client would), and the
 * main thread writes BYTES (default 100) to each connection in turn, ROUNDS
 * times (default 20), pausing 50 ms between rounds so the reader is asleep
 * when a round starts, as it is between fan-outs. Prints the writer's thread
 * CPU time per write (median of the rounds) and the reader's. Loopback only,
 * bounded by ROUNDS. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int ep;
static atomic_long received;
static atomic_bool stop;

static double thread_cpu_us(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static double reader_cpu;

static void *reader(void *arg)
{
  (void)arg;
  struct epoll_event evs[256];
  char buf[4096];
  while(!atomic_load(&stop)) {
    int n = epoll_wait(ep, evs, 256, 100);
    for(int i = 0; i < n; i++) {
      ssize_t r;
      while((r = recv(evs[i].data.fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
        atomic_fetch_add(&received, r);
    }
  }
  reader_cpu = thread_cpu_us();
  return NULL;
}

static int cmp(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
  long conns = argc > 1 ? atol(argv[1]) : 5000;
  long rounds = argc > 2 ? atol(argv[2]) : 20;
  long bytes = argc > 3 ? atol(argv[3]) : 100;
  if(conns < 1 || conns > 9000 || rounds < 1 || rounds > 1000 || bytes < 1 || bytes > 4096) {
    fprintf(stderr, "usage: send_floor [CONNECTIONS 1-9000] [ROUNDS 1-1000] [BYTES 1-4096]\n");
    return 2;
  }
  rlim_t need = (rlim_t)(2 * conns + 64);
  struct rlimit rl;
  if(getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < need) {
    rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if(getrlimit(RLIMIT_NOFILE, &rl) || rl.rlim_cur < need) {
    fprintf(stderr, "send_floor: %ld connections need %lu open files\n", conns,
            (unsigned long)need);
    return 1;
  }
  int rc = 1;
  bool reading = false;
  pthread_t t;
  int *w = calloc((size_t)conns, sizeof(*w));
  char *msg = malloc((size_t)bytes);
  double *per = calloc((size_t)rounds, sizeof(*per));
  int ls = socket(AF_INET, SOCK_STREAM, 0);
  ep = epoll_create1(0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t al = sizeof(a);
  if(!w || !msg || !per || ep < 0 || ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof(a)) ||
     listen(ls, 4096) || getsockname(ls, (struct sockaddr *)&a, &al)) {
    perror("setup");
    goto out;
  }
  for(long i = 0; i < conns; i++)
    w[i] = -1;
  for(long i = 0; i < conns; i++) {
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if(c < 0 || connect(c, (struct sockaddr *)&a, sizeof(a))) {
      perror("connect");
      if(c >= 0)
        close(c);
      goto out;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
    epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev); /* the client side reads; closed with ep's fds below */
    int s = accept(ls, NULL, NULL);
    if(s < 0) {
      perror("accept");
      close(c);
      goto out;
    }
    int one = 1;
    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    w[i] = s; /* the server side writes */
  }
  if(pthread_create(&t, NULL, reader, NULL))
    goto out;
  reading = true;
  memset(msg, 'x', (size_t)bytes);
  for(long r = 0; r < rounds; r++) {
    struct timespec pause = {0, 50 * 1000 * 1000};
    nanosleep(&pause, NULL);
    double t0 = thread_cpu_us();
    for(long i = 0; i < conns; i++)
      if(send(w[i], msg, (size_t)bytes, 0) != bytes) {
        perror("send");
        goto out;
      }
    per[r] = (thread_cpu_us() - t0) / (double)conns;
  }
  long want = conns * rounds * bytes;
  for(int i = 0; i < 200 && atomic_load(&received) < want; i++) {
    struct timespec ms10 = {0, 10 * 1000 * 1000};
    nanosleep(&ms10, NULL);
  }
  atomic_store(&stop, true);
  pthread_join(t, NULL);
  reading = false;
  qsort(per, (size_t)rounds, sizeof(*per), cmp);
  printf("send_floor: %ld connections x %ld rounds of %ld bytes: writer %.2f us CPU per write "
         "(median; min %.2f, max %.2f); reader %.2f us CPU per message; received %ld of %ld "
         "bytes\n",
         conns, rounds, bytes, per[rounds / 2], per[0], per[rounds - 1],
         reader_cpu / (double)(conns * rounds), atomic_load(&received), want);
  rc = atomic_load(&received) == want ? 0 : 1;
out:
  if(reading) {
    atomic_store(&stop, true);
    pthread_join(t, NULL);
  }
  /* the process exits: its sockets close with it; the memory is freed for
   * the leak checkers */
  free(w);
  free(msg);
  free(per);
  return rc;
}
