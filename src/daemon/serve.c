/*
 * serve.c - `shoal serve`: options, defaults, the start-up line and the
 * process's life (see daemon.h).
 *
 * Defaults are what `make run` and an auto-started daemon use: the socket
 * from shoal_default_socket() and a quarter of the machine's memory. The
 * daemon may exit with a message only here, during start-up; once serving,
 * nothing a client does ends it.
 */
#include "daemon.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "server.h"
#include "os.h"
#include "shoal.h"
#include "size.h"

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: shoal serve [options]\n"
	        "\n"
	        "Runs the shoal store: one shared-memory arena served on a "
	        "Unix socket.\n"
	        "\n"
	        "  -m, --memory SIZE     capacity in bytes, or with a K/M/G/T "
	        "suffix\n"
	        "                        (default: a quarter of this machine's "
	        "memory)\n"
	        "  -s, --socket PATH     socket path (default: $SHOAL_SOCKET,\n"
	        "                        $XDG_RUNTIME_DIR/shoal.sock or "
	        "/tmp/shoal-UID/shoal.sock)\n"
	        "  -d, --dir DIR         back the arena with a file in DIR "
	        "(e.g. hugetlbfs)\n"
	        "                        instead of anonymous shared memory\n"
	        "      --persist DIR     keep the arena and the names in DIR: "
	        "named objects\n"
	        "                        survive a restart or a crash of the "
	        "daemon\n"
	        "      --prefault        allocate the arena's pages in the "
	        "background\n"
	        "                        (and keep freed memory: implies "
	        "--no-trim)\n"
	        "      --reserve SIZE    free memory kept allocated for the "
	        "next puts;\n"
	        "                        the rest is given back to the OS "
	        "(default: a\n"
	        "                        quarter of the capacity)\n"
	        "      --trim            give all freed memory back "
	        "(--reserve 0)\n"
	        "      --no-trim         keep all freed memory allocated\n"
	        "      --stall-timeout MS  drop a client that reads no replies "
	        "this long\n"
	        "                        (default 10000)\n"
	        "      --event-queue SIZE  unread events a subscriber may have "
	        "before\n"
	        "                        it is dropped (default 4M)\n"
	        "      --freelog-entries N  slots of the log of freed ranges "
	        "that clients\n"
	        "                        follow to drop freed pages (a power "
	        "of two;\n"
	        "                        default 65536; 0: no log)\n"
	        "  -v, --verbose         log clients coming and going\n"
	        "  -h, --help            this text\n"
	        "  -V, --version         print the version\n");
	limit_usage(f);
}

/* Parses "15000000000", "64M", "1.5G", "512KiB". Returns 0 or -1. */
static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	double v;
	uint64_t mult = 1;

	if (!s || !*s || *s == '-' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	if (strspn(s, "0123456789") == strlen(s)) {
		unsigned long long n = strtoull(s, &end, 10);
		if (errno)
			return -1;
		*out = n;
		return 0;
	}
	v = strtod(s, &end);
	if (errno || end == s || v < 0)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case 'K':
		mult = 1ull << 10;
		break;
	case 'M':
		mult = 1ull << 20;
		break;
	case 'G':
		mult = 1ull << 30;
		break;
	case 'T':
		mult = 1ull << 40;
		break;
	case 'B':
	case '\0':
		break;
	default:
		return -1;
	}
	if (mult > 1) {
		end++;
		if (*end == 'i' || *end == 'I')
			end++;
		if (*end == 'b' || *end == 'B')
			end++;
	} else if (*end == 'b' || *end == 'B') {
		end++;
	}
	if (*end != '\0' || v * (double)mult >= 1.8e19)
		return -1;
	*out = (uint64_t)(v * (double)mult);
	return 0;
}

int daemon_main(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"memory", required_argument, NULL, 'm'},
	        {"socket", required_argument, NULL, 's'},
	        {"dir", required_argument, NULL, 'd'},
	        {"persist", required_argument, NULL, 'p'},
	        {"prefault", no_argument, NULL, 'P'},
	        {"trim", no_argument, NULL, 'T'},
	        {"no-trim", no_argument, NULL, 'N'},
	        {"reserve", required_argument, NULL, 'R'},
	        {"stall-timeout", required_argument, NULL, 'S'},
	        {"debug-checks", no_argument, NULL, 'D'},
	        {"event-queue", required_argument, NULL, 'E'},
	        {"freelog-entries", required_argument, NULL, 'F'},
	        {"verbose", no_argument, NULL, 'v'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        LIMITS_LONGOPTS,
	        {NULL, 0, NULL, 0},
	};
	struct server_options opt = {.stall_ms = 10000,
	                             .event_queue = 4u << 20};
	char sock[4096], err[1024], cap[32];
	/* the warm reserve in bytes; UINT64_MAX: never trim */
	uint64_t reserve = 0;

	/* The daemon's tables grow by doubling (objects, allocator nodes,
	 * names) while clients wait. From this size on glibc serves them by
	 * mmap, so a realloc moves pages (mremap) instead of copying tens of
	 * MiB in one request; a fixed threshold also stops glibc from raising
	 * it (to 32 MiB) after the first large free. */
	mallopt(M_MMAP_THRESHOLD, 1 << 20);
	bool reserve_given = false;
	struct server *srv;
	struct sysinfo si;
	int c, rc;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":m:s:d:vhV", longopts, NULL)) !=
	       -1) {
		switch (c) {
		case 'm':
			if (parse_size(optarg, &opt.capacity) ||
			    opt.capacity == 0) {
				fprintf(stderr,
				        "shoal serve: bad size '%s' (bytes, or "
				        "a number with K, M, G or T)\n",
				        optarg);
				return 2;
			}
			break;
		case 's':
			opt.socket_path = optarg;
			break;
		case 'd':
			opt.dir = optarg;
			break;
		case 'p':
			opt.persist_dir = optarg;
			break;
		case 'P':
			opt.prefault = true;
			break;
		case 'T':
			reserve = 0;
			reserve_given = true;
			break;
		case 'N':
			reserve = UINT64_MAX;
			reserve_given = true;
			break;
		case 'R':
			if (parse_size(optarg, &reserve)) {
				fprintf(stderr,
				        "shoal serve: bad --reserve '%s'\n",
				        optarg);
				return 2;
			}
			reserve_given = true;
			break;
		case 'S': {
			char *end;
			errno = 0;
			unsigned long long ms = strtoull(optarg, &end, 10);
			if (errno || *end || end == optarg || ms == 0) {
				fprintf(stderr,
				        "shoal serve: bad --stall-timeout "
				        "'%s'\n",
				        optarg);
				return 2;
			}
			opt.stall_ms = ms;
			break;
		}
		case 'D':
			opt.debug_checks = true;
			break;
		case 'E':
			if (parse_size(optarg, &opt.event_queue)) {
				fprintf(stderr,
				        "shoal serve: bad --event-queue '%s'\n",
				        optarg);
				return 2;
			}
			break;
		case 'F': {
			char *end;
			unsigned long long n = strtoull(optarg, &end, 10);
			if (*optarg < '0' || *optarg > '9' || *end ||
			    (n && n < 16) || n > (1ull << 24) ||
			    (n & (n - 1))) {
				fprintf(stderr,
				        "shoal serve: bad --freelog-entries "
				        "'%s' "
				        "(0, or a power of two from 16 to "
				        "16777216)\n",
				        optarg);
				return 2;
			}
			opt.freelog_entries = n;
			opt.no_freelog = n == 0;
			break;
		}
		case 'v':
			opt.verbose = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("shoal %s\n", SHOAL_VERSION_STRING);
			return 0;
		case ':':
			fprintf(stderr, "shoal serve: %s needs a value\n",
			        argv[optind - 1]);
			return 2;
		default:
			rc = limit_option(&opt.limits, c, optarg, parse_size);
			if (rc > 0)
				break;
			if (rc < 0)
				return 2;
			fprintf(stderr, "shoal serve: unknown option '%s'\n",
			        argv[optind - 1]);
			usage(stderr);
			return 2;
		}
	}
	if (opt.dir && opt.persist_dir) {
		fprintf(stderr, "shoal serve: --persist DIR puts the arena in "
		                "DIR; it does not go with -d\n");
		return 2;
	}
	if (optind < argc) {
		fprintf(stderr, "shoal serve: unexpected argument '%s'\n",
		        argv[optind]);
		return 2;
	}
	if (!opt.socket_path) {
		rc = shoal_default_socket(sock, sizeof(sock));
		if (rc == SHOAL_ETOOBIG) {
			fprintf(stderr, "shoal serve: the default socket path "
			                "is too long; use -s\n");
			return 1;
		}
		if (rc < 0) {
			fprintf(stderr,
			        "shoal serve: cannot use the default socket "
			        "%s: %s (remove its directory if it is not "
			        "yours, or use -s)\n",
			        sock, shoal_strerror(rc));
			return 1;
		}
		opt.socket_path = sock;
	}
	if (!opt.capacity) {
		if (sysinfo(&si) != 0) {
			fprintf(stderr,
			        "shoal serve: cannot read the machine's "
			        "memory size; use -m\n");
			return 1;
		}
		opt.capacity = (uint64_t)si.totalram * si.mem_unit / 4;
	}
	/* Freed memory beyond the warm reserve goes back to the OS, unless
	 * the arena is to stay populated (--prefault, --no-trim). */
	if (!reserve_given)
		reserve = opt.prefault ? UINT64_MAX : opt.capacity / 4;
	opt.trim = reserve != UINT64_MAX;
	opt.reserve = opt.trim ? reserve : 0;
	srv = os_calloc(1, sizeof(*srv));
	if (!srv) {
		fprintf(stderr, "shoal serve: out of memory\n");
		return 1;
	}
	rc = server_init(srv, &opt, err, sizeof(err));
	if (rc) {
		fprintf(stderr, "shoal serve: %s\n", err);
		free(srv);
		return 1;
	}
	size_format(srv->arena.requested, cap, sizeof(cap));
	printf("shoal: serving %s (%llu bytes) on %s, backed by %s, pid %d\n",
	       cap, (unsigned long long)srv->arena.requested, opt.socket_path,
	       srv->arena.backing, (int)getpid());
	if (srv->persisting) {
		printf("shoal: names kept in %s: %llu restored, %llu "
		       "dropped%s%s\n",
		       opt.persist_dir,
		       (unsigned long long)srv->persist.restored_names,
		       (unsigned long long)srv->persist.dropped_names,
		       srv->persist.restore_note[0] ? ": " : "",
		       srv->persist.restore_note);
	}
	fflush(stdout);
	rc = server_run(srv);
	server_free(srv);
	free(srv);
	if (rc) {
		fprintf(stderr, "shoal serve: event loop failed: %s\n",
		        shoal_strerror(rc));
		return 1;
	}
	return 0;
}
