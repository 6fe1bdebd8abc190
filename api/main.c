/*
 * main.c - the flowvault command: one program, subcommands.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "api/cli.h"
#include "common/fv.h"

volatile sig_atomic_t fv_cli_stop;

static void on_signal(int sig)
{
	(void)sig;
	fv_cli_stop = 1;
}

static void usage(FILE *f)
{
	fputs("usage: flowvault COMMAND [options]   (flowvault COMMAND --help)\n"
	      "\n"
	      "  record    record live traffic from an interface into a store\n"
	      "  import    store and index the frames of pcap/pcapng files\n"
	      "  flows     list flows matching a flow filter and a time range\n"
	      "  extract   write a flow's packets, or a BPF query, as pcap\n"
	      "  status    what a store holds\n"
	      "  fsck      check that the index and the segments agree\n"
	      "  serve     the REST API over a store (HTTP, loopback by default)\n"
	      "  version   print the version\n",
	      f);
}

int main(int argc, char **argv)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (argc < 2) {
		usage(stderr);
		return FV_EXIT_USAGE;
	}
	argv++;
	argc--;
	if (!strcmp(argv[0], "record"))
		return fv_cli_record(argc, argv);
	if (!strcmp(argv[0], "import"))
		return fv_cli_import(argc, argv);
	if (!strcmp(argv[0], "flows"))
		return fv_cli_flows(argc, argv);
	if (!strcmp(argv[0], "extract"))
		return fv_cli_extract(argc, argv);
	if (!strcmp(argv[0], "status"))
		return fv_cli_status(argc, argv);
	if (!strcmp(argv[0], "fsck"))
		return fv_cli_fsck(argc, argv);
	if (!strcmp(argv[0], "serve"))
		return fv_cli_serve(argc, argv);
	if (!strcmp(argv[0], "version") || !strcmp(argv[0], "--version")) {
		printf("flowvault %s\n", FV_VERSION);
		return FV_EXIT_OK;
	}
	if (!strcmp(argv[0], "help") || !strcmp(argv[0], "--help") ||
	    !strcmp(argv[0], "-h")) {
		usage(stdout);
		return FV_EXIT_OK;
	}
	fprintf(stderr, "flowvault: unknown command '%s'\n", argv[0]);
	usage(stderr);
	return FV_EXIT_USAGE;
}
