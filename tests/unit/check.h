/*
 * check.h - the assertion of the unit tests. CHECK(cond, fmt, ...) counts
 * every check and every failure, prints the first 50 failures with their
 * file and line, and goes on, so one run shows everything that is wrong.
 * A test's main() returns failed ? 1 : 0.
 */
#ifndef FV_TESTS_UNIT_CHECK_H
#define FV_TESTS_UNIT_CHECK_H

#include <stdio.h>

static int failed;
static int checks;

#define CHECK(cond, ...)                                                       \
	do {                                                                   \
		checks++;                                                      \
		if (!(cond) && failed++ < 50) {                                \
			fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);   \
			fprintf(stderr, __VA_ARGS__);                          \
			fputc('\n', stderr);                                   \
		}                                                              \
	} while (0)

#endif
