#ifndef CSYSTEM_H
#define CSYSTEM_H
/* Linux calls that Swift's Glibc module does not expose (epoll, eventfd, getrandom).
 * epoll_event is packed on x86-64, so the wrappers pass plain fd/event pairs instead.
 * Internal: hidden from libmillis.so's exports by the version script. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum {
    CSYS_EPOLLIN = 0x001,
    CSYS_EPOLLOUT = 0x004,
    CSYS_EPOLLERR = 0x008,
    CSYS_EPOLLHUP = 0x010
};

int csys_epoll_create(void);
/* op: 0 add, 1 modify, 2 delete. The event's data is the fd itself. */
int csys_epoll_ctl(int epfd, int op, int fd, uint32_t events);
/* Waits like epoll_wait and writes up to max ready (fd, events) pairs. */
int csys_epoll_wait(int epfd, int *fds, uint32_t *events, int max, int timeout_ms);
int csys_eventfd(void);
/* A non-blocking, close-on-exec CLOCK_MONOTONIC timerfd firing every period_ns
 * (first expiry one period from now): a clock for devices that have none (files). */
int csys_timerfd_periodic(uint64_t period_ns);
/* Names the calling thread (at most 15 bytes show), for top -H, perf and gdb. */
void csys_name_thread(const char *name);
ssize_t csys_getrandom(void *buffer, size_t length);
#endif
