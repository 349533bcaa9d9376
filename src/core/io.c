/* io.c -- reading a plain socket into a bufferevent's input buffer without libevent's FIONREAD. */
#include "config.h"

#include <errno.h>
#include <sys/uio.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "core_int.h"

/*
 * libevent's evbuffer_read() asks the kernel how many bytes are waiting
 * (ioctl FIONREAD) before every read, to size its buffer: a system call per
 * read that a proxy moving small requests and answers pays twice per exchange.
 * Reserving a fixed amount of room and reading once gives the same result.
 */
#define MG_SOCK_READ_MAX 16384

ssize_t
mg_sock_read(evutil_socket_t fd, struct evbuffer *in, int *err)
{
    struct evbuffer_iovec v[2];
    struct iovec iov[2];
    ssize_t n = -1;
    int nv;

    *err = ENOMEM;
    /* A bufferevent keeps its input's end frozen except while it reads itself. */
    evbuffer_unfreeze(in, 0);
    nv = evbuffer_reserve_space(in, MG_SOCK_READ_MAX, v, 2);
    if (nv > 0) {
        for (int i = 0; i < nv; i++) {
            iov[i].iov_base = v[i].iov_base;
            iov[i].iov_len = v[i].iov_len;
        }
        n = readv(fd, iov, nv);
        *err = n < 0 ? errno : 0;
        if (n > 0) {
            size_t left = (size_t)n;
            int used = 0;
            for (; used < nv && left > 0; used++) {
                if (v[used].iov_len > left)
                    v[used].iov_len = left;
                left -= v[used].iov_len;
            }
            evbuffer_commit_space(in, v, used);
        }
    }
    evbuffer_freeze(in, 0);
    return n;
}

void
mg_sock_reading(struct bufferevent *bev, struct event *rd, bool *reading, bool on)
{
    if (rd == NULL) {
        if (on)
            bufferevent_enable(bev, EV_READ);
        else
            bufferevent_disable(bev, EV_READ);
        return;
    }
    if (on == *reading)
        return; /* unchanged: no epoll_ctl */
    *reading = on;
    if (on)
        event_add(rd, NULL);
    else
        event_del(rd);
}
