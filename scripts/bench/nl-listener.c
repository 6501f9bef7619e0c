// A bare rtnetlink listener for scripts/bench/bgp.sh: subscribes to the IPv4
// and IPv6 route groups and to nexthop objects, and only records what it
// receives, one line per message, with its CLOCK_REALTIME receive time:
//
//   <sec.nsec> A|D <prefix>/<len> <protocol> <table>   RTM_NEWROUTE / RTM_DELROUTE
//   <sec.nsec> NA|ND <id>                             RTM_NEWNEXTHOP / RTM_DELNEXTHOP
//   <sec.nsec> OVERRUN                                 receive buffer overrun (ENOBUFS)
//
// It is the benchmark's control ("what any netlink listener costs the
// routing daemon") and the kernel-side clock for accel's lag. C rather than
// `ip monitor` or Python: it must keep up with a million routes without
// dropping any and without taking CPU from the daemons it watches; its
// receive buffer is raised with SO_RCVBUFFORCE (64 MiB by default).
//
//   nl-listener [-o FILE] [-b RCVBUF_BYTES]     (stop it with SIGTERM/SIGINT;
//   it flushes FILE and prints a summary line on stderr)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef RTNLGRP_NEXTHOP
#define RTNLGRP_NEXTHOP 32
#endif
#ifndef RTM_NEWNEXTHOP
#define RTM_NEWNEXTHOP 104
#define RTM_DELNEXTHOP 105
#endif
#define NHA_ID 1

static volatile sig_atomic_t stop;
static void on_signal(int sig) { (void)sig; stop = 1; }

int main(int argc, char **argv) {
    const char *out = NULL;
    int rcvbuf = 64 << 20, opt;
    while ((opt = getopt(argc, argv, "o:b:")) != -1) {
        if (opt == 'o') out = optarg;
        else if (opt == 'b') rcvbuf = atoi(optarg);
        else { fprintf(stderr, "usage: %s [-o FILE] [-b RCVBUF]\n", argv[0]); return 2; }
    }
    FILE *f = out ? fopen(out, "w") : stdout;
    if (!f) { perror(out); return 1; }
    static char obuf[1 << 20];
    setvbuf(f, obuf, _IOFBF, sizeof obuf);

    struct sigaction sa = {.sa_handler = on_signal}; // no SA_RESTART: recv returns EINTR
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (fd < 0) { perror("socket"); return 1; }
    if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof rcvbuf) < 0 &&
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf) < 0)
        perror("SO_RCVBUF");
    struct sockaddr_nl sa_nl = {.nl_family = AF_NETLINK,
                                .nl_groups = RTMGRP_IPV4_ROUTE | RTMGRP_IPV6_ROUTE};
    if (bind(fd, (struct sockaddr *)&sa_nl, sizeof sa_nl) < 0) { perror("bind"); return 1; }
    int grp = RTNLGRP_NEXTHOP;
    if (setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &grp, sizeof grp) < 0)
        perror("NETLINK_ADD_MEMBERSHIP nexthop");
    fprintf(stderr, "nl-listener: listening (rcvbuf %d)\n", rcvbuf);
    if (out) { FILE *r = fopen(out, "a"); if (r) fclose(r); }

    static char buf[1 << 20];
    unsigned long long routes = 0, nhs = 0, overruns = 0, msgs = 0;
    while (!stop) {
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == ENOBUFS) {
                overruns++;
                fprintf(f, "%lld.%09ld OVERRUN\n", (long long)ts.tv_sec, ts.tv_nsec);
                continue;
            }
            perror("recv");
            break;
        }
        int len = (int)n;
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, len); h = NLMSG_NEXT(h, len)) {
            msgs++;
            if (h->nlmsg_type == RTM_NEWROUTE || h->nlmsg_type == RTM_DELROUTE) {
                struct rtmsg *rt = NLMSG_DATA(h);
                if (h->nlmsg_len < NLMSG_LENGTH(sizeof *rt)) continue;
                unsigned table = rt->rtm_table;
                unsigned char dst[16] = {0};
                int alen = RTM_PAYLOAD(h);
                for (struct rtattr *a = RTM_RTA(rt); RTA_OK(a, alen); a = RTA_NEXT(a, alen)) {
                    if (a->rta_type == RTA_DST && RTA_PAYLOAD(a) <= sizeof dst)
                        memcpy(dst, RTA_DATA(a), RTA_PAYLOAD(a));
                    else if (a->rta_type == RTA_TABLE && RTA_PAYLOAD(a) >= 4)
                        table = *(uint32_t *)RTA_DATA(a);
                }
                char p[INET6_ADDRSTRLEN];
                if (!inet_ntop(rt->rtm_family, dst, p, sizeof p)) continue;
                routes++;
                fprintf(f, "%lld.%09ld %c %s/%u %u %u\n", (long long)ts.tv_sec, ts.tv_nsec,
                        h->nlmsg_type == RTM_NEWROUTE ? 'A' : 'D', p, rt->rtm_dst_len,
                        rt->rtm_protocol, table);
            } else if (h->nlmsg_type == RTM_NEWNEXTHOP || h->nlmsg_type == RTM_DELNEXTHOP) {
                // struct nhmsg is 8 bytes: family, scope, protocol, resvd, flags
                uint32_t id = 0;
                int alen = (int)h->nlmsg_len - NLMSG_LENGTH(8);
                for (struct rtattr *a = (struct rtattr *)((char *)NLMSG_DATA(h) + 8); RTA_OK(a, alen);
                     a = RTA_NEXT(a, alen))
                    if (a->rta_type == NHA_ID && RTA_PAYLOAD(a) >= 4) id = *(uint32_t *)RTA_DATA(a);
                nhs++;
                fprintf(f, "%lld.%09ld %s %u\n", (long long)ts.tv_sec, ts.tv_nsec,
                        h->nlmsg_type == RTM_NEWNEXTHOP ? "NA" : "ND", id);
            }
        }
    }
    fflush(f);
    fprintf(stderr, "nl-listener: %llu messages, %llu route, %llu nexthop, %llu overruns\n", msgs, routes,
            nhs, overruns);
    return overruns ? 3 : 0;
}
