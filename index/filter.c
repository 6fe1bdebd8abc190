/*
 * filter.c - compiles the flow filter language (filter.h, docs/filter.md)
 * into a flat program and runs it against flow records.
 *
 * Compilation is two steps. A recursive-descent parser builds a small
 * tree (n-ary AND/OR, NOT, leaves) in one growable array; nesting of
 * parentheses and "not" is limited to FILTER_MAX_DEPTH, so neither the
 * parser nor the code generator can overflow the stack. The generator
 * then lays the leaves out in source order as tests with a "true" and a
 * "false" jump, as BPF does: an AND jumps to its next child on true and
 * to its own false target on false, an OR the other way round, a NOT
 * swaps its targets. Every jump goes forward, so fv_filter_match() is a
 * loop that ends after at most one test per leaf, short-circuits like
 * the source expression, never recurses and never allocates; the
 * program is read-only after compilation, so any number of threads may
 * match with one filter.
 *
 * Errors carry the byte offset and length of the offending token, and a
 * sentence that names what was expected and what was found.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/fv.h"
#include "capture/decode.h"
#include "index/filter.h"

#define FILTER_MAX_DEPTH 64	   /* nested "(" and "not" */
#define FILTER_MAX_LEN	 (1 << 20) /* bytes of expression */
#define CID_LEN		 30	   /* "1:" + 28 base64 characters */

/* Jump targets beyond the program: the verdicts. */
#define J_ACCEPT (-1)
#define J_REJECT (-2)

enum tok_kind {
	T_END,
	T_WORD,
	T_LPAREN,
	T_RPAREN,
	T_LBRACK,
	T_RBRACK,
	T_COMMA,
	T_NOT,	  /* ! */
	T_AND,	  /* && */
	T_OR,	  /* || */
	T_CMP,	  /* < <= > >= = == != */
	T_STRING, /* "..." (only where a raw argument is read) */
	T_BAD,	  /* a byte that starts no token */
};

enum cmp_op { C_EQ, C_NE, C_LT, C_LE, C_GT, C_GE };

/*
 * Which side of the bidirectional flow a primitive looks at. D_NONE is
 * what the user wrote when no direction was given: for addresses and
 * ports it means either side, for byte and packet counts the sum of both
 * directions, for TCP flags the union of both directions.
 */
enum dir { D_NONE, D_SRC, D_DST, D_EITHER, D_BOTH };

enum op {
	OP_TRUE,
	OP_HOST,
	OP_NET,
	OP_PORT,
	OP_PROTO,
	OP_FAMILY,
	OP_VLAN,
	OP_FLOW,
	OP_ICMP_TYPE,
	OP_ICMP_CODE,
	OP_CID,
	OP_FLAGS,
	OP_BYTES,
	OP_PKTS,
	OP_DURATION,
};

/* One test of the compiled program. */
struct fins {
	uint8_t op;	/* enum op */
	uint8_t dir;	/* enum dir */
	uint8_t cmp;	/* enum cmp_op */
	uint8_t family; /* 4 or 6 for HOST, NET, FAMILY */
	uint8_t plen;	/* NET prefix length */
	int32_t jt;	/* next test when true, or J_ACCEPT / J_REJECT */
	int32_t jf;	/* next test when false */
	uint64_t val;	/* number, port, flag mask, duration in ns */
	union {
		uint8_t addr[16];
		char cid[CID_LEN + 2];
	} u;
};

struct fv_filter {
	struct fv_filter_plan plan;
	int32_t start; /* first test, or J_ACCEPT for the empty filter */
	int32_t n;
	struct fins ins[];
};

struct tok {
	enum tok_kind kind;
	int pos;
	int len;
	uint8_t cmp; /* for T_CMP */
};

enum node_kind { N_LEAF, N_AND, N_OR, N_NOT };

/* A parse-tree node; children form a list through next. */
struct pnode {
	enum node_kind kind;
	int kid;   /* first child, -1 if none */
	int last;  /* last child */
	int next;  /* next sibling, -1 at the end */
	int first; /* index of its first leaf in the program */
	struct fins leaf;
};

struct parser {
	const char *s;
	int n;		 /* strlen(s) */
	struct tok tok;	 /* the current (lookahead) token */
	struct tok prev; /* the token consumed last; kind T_END at start */
	int depth;
	struct pnode *nodes;
	int nnodes;
	int cap;
	int nleaves;
	struct fv_filter_error *err;
};

/* ---- lexing ---- */

static int is_space(int c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
	       c == '\v';
}

static int is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* Characters of words: keywords, numbers, addresses, prefixes. */
static int is_word_char(int c)
{
	return is_alpha(c) || is_digit(c) || c == '.' || c == ':' || c == '/' ||
	       c == '_' || c == '-';
}

/* Lexes the token that starts at or after byte at. */
static void lex_at(const struct parser *p, int at, struct tok *t)
{
	const unsigned char *s = (const unsigned char *)p->s;
	int c, c1;

	while (at < p->n && is_space(s[at]))
		at++;
	t->pos = at;
	t->len = 1;
	t->cmp = C_EQ;
	if (at >= p->n) {
		t->kind = T_END;
		t->len = 0;
		return;
	}
	c = s[at];
	c1 = at + 1 < p->n ? s[at + 1] : 0;
	switch (c) {
	case '(':
		t->kind = T_LPAREN;
		return;
	case ')':
		t->kind = T_RPAREN;
		return;
	case '[':
		t->kind = T_LBRACK;
		return;
	case ']':
		t->kind = T_RBRACK;
		return;
	case ',':
		t->kind = T_COMMA;
		return;
	case '!':
		if (c1 == '=') {
			t->kind = T_CMP;
			t->cmp = C_NE;
			t->len = 2;
		} else {
			t->kind = T_NOT;
		}
		return;
	case '=':
		t->kind = T_CMP;
		t->cmp = C_EQ;
		t->len = c1 == '=' ? 2 : 1;
		return;
	case '<':
	case '>':
		t->kind = T_CMP;
		t->cmp = c == '<' ? (c1 == '=' ? C_LE : C_LT)
				  : (c1 == '=' ? C_GE : C_GT);
		t->len = c1 == '=' ? 2 : 1;
		return;
	case '&':
	case '|':
		if (c1 == c) {
			t->kind = c == '&' ? T_AND : T_OR;
			t->len = 2;
		} else {
			t->kind = T_BAD;
		}
		return;
	}
	if (is_word_char(c)) {
		int e = at;

		while (e < p->n && is_word_char(s[e]))
			e++;
		t->kind = T_WORD;
		t->len = e - at;
		return;
	}
	/* Anything else; a UTF-8 sequence is one token for the caret. */
	t->kind = T_BAD;
	if (c >= 0xc0)
		while (t->len < 4 && at + t->len < p->n &&
		       (s[at + t->len] & 0xc0) == 0x80)
			t->len++;
}

/*
 * Lexes a raw argument (a Community ID) at byte at: a double-quoted
 * string, or a run of printable characters up to a space or a
 * parenthesis. Returns a token of length 0 (kind of whatever is there)
 * if there is none.
 */
static void lex_raw_at(const struct parser *p, int at, struct tok *t)
{
	const unsigned char *s = (const unsigned char *)p->s;
	int e = at;

	lex_at(p, at, t);
	at = t->pos;
	if (at < p->n && s[at] == '"') {
		e = at + 1;
		while (e < p->n && s[e] != '"' && s[e] >= 0x20 && s[e] < 0x7f)
			e++;
		if (e < p->n && s[e] == '"') {
			t->kind = T_STRING;
			t->len = e + 1 - at;
		}
		return;
	}
	e = at;
	while (e < p->n && s[e] > 0x20 && s[e] < 0x7f && s[e] != '(' &&
	       s[e] != ')')
		e++;
	if (e > at) {
		t->kind = T_WORD;
		t->len = e - at;
	}
}

static void advance(struct parser *p)
{
	p->prev = p->tok;
	lex_at(p, p->tok.pos + p->tok.len, &p->tok);
}

/* True if t is the word w, in any case. */
static int tok_is(const struct parser *p, const struct tok *t, const char *w)
{
	return t->kind == T_WORD && (size_t)t->len == strlen(w) &&
	       !strncasecmp(p->s + t->pos, w, (size_t)t->len);
}

static int is_and(const struct parser *p, const struct tok *t)
{
	return t->kind == T_AND || tok_is(p, t, "and");
}

static int is_or(const struct parser *p, const struct tok *t)
{
	return t->kind == T_OR || tok_is(p, t, "or");
}

static int is_not(const struct parser *p, const struct tok *t)
{
	return t->kind == T_NOT || tok_is(p, t, "not");
}

/* D_SRC or D_DST if t is a direction word, else D_NONE. */
static int side_of(const struct parser *p, const struct tok *t)
{
	if (tok_is(p, t, "src") || tok_is(p, t, "client"))
		return D_SRC;
	if (tok_is(p, t, "dst") || tok_is(p, t, "server"))
		return D_DST;
	return D_NONE;
}

/* ---- errors ---- */

static int fail_at(struct parser *p, int pos, int len, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static int fail_at(struct parser *p, int pos, int len, const char *fmt, ...)
{
	va_list ap;

	p->err->pos = pos;
	p->err->len = len;
	va_start(ap, fmt);
	vsnprintf(p->err->msg, sizeof(p->err->msg), fmt, ap);
	va_end(ap);
	return FV_EFILTER;
}

/* Quotes the text of t for a message: 'text', or "end of input". */
static const char *describe(const struct parser *p, const struct tok *t,
			    char *buf, size_t size)
{
	const unsigned char *s = (const unsigned char *)p->s + t->pos;

	if (t->kind == T_END)
		snprintf(buf, size, "end of input");
	else if (t->kind == T_BAD && (s[0] < 0x20 || s[0] >= 0x7f))
		snprintf(buf, size, "byte 0x%02x", s[0]);
	else if (t->len > 32)
		snprintf(buf, size, "'%.28s...'", (const char *)s);
	else
		snprintf(buf, size, "'%.*s'", t->len, (const char *)s);
	return buf;
}

/* A message for a token that is not an operator at all. */
static int fail_bad(struct parser *p)
{
	const struct tok *t = &p->tok;
	char c = p->s[t->pos];
	char got[48];

	if (c == '&')
		return fail_at(p, t->pos, t->len,
			       "'&' is not an operator: use '&&' or 'and'");
	if (c == '|')
		return fail_at(p, t->pos, t->len,
			       "'|' is not an operator: use '||' or 'or'");
	return fail_at(p, t->pos, t->len, "unexpected character %s",
		       describe(p, t, got, sizeof(got)));
}

/* "expected WHAT after 'PREV', got 'TOKEN'", at the current token. */
static int expected(struct parser *p, const char *what)
{
	char prev[48], got[48];

	if (p->tok.kind == T_BAD)
		return fail_bad(p);
	describe(p, &p->tok, got, sizeof(got));
	if (p->prev.kind == T_END)
		return fail_at(p, p->tok.pos, p->tok.len, "expected %s, got %s",
			       what, got);
	return fail_at(p, p->tok.pos, p->tok.len,
		       "expected %s after %s, got %s", what,
		       describe(p, &p->prev, prev, sizeof(prev)), got);
}

/* ---- the tree ---- */

static int new_node(struct parser *p, enum node_kind kind)
{
	struct pnode *nd;

	if (p->nnodes == p->cap) {
		int cap = p->cap ? p->cap * 2 : 16;
		struct pnode *nn = realloc(p->nodes, (size_t)cap * sizeof(*nn));

		if (!nn)
			return -ENOMEM;
		p->nodes = nn;
		p->cap = cap;
	}
	nd = &p->nodes[p->nnodes];
	memset(nd, 0, sizeof(*nd));
	nd->kind = kind;
	nd->kid = -1;
	nd->last = -1;
	nd->next = -1;
	nd->first = -1;
	return p->nnodes++;
}

static int new_leaf(struct parser *p, const struct fins *leaf)
{
	int n = new_node(p, N_LEAF);

	if (n < 0)
		return n;
	p->nodes[n].leaf = *leaf;
	p->nleaves++;
	return n;
}

/* Appends child to parent; an AND under an AND (OR under OR) merges. */
static void add_kid(struct parser *p, int parent, int child)
{
	struct pnode *pa = &p->nodes[parent], *c = &p->nodes[child];
	int head = child, tail = child;

	if (c->kind == pa->kind && (c->kind == N_AND || c->kind == N_OR)) {
		head = c->kid;
		tail = c->last;
	}
	if (pa->last < 0)
		pa->kid = head;
	else
		p->nodes[pa->last].next = head;
	pa->last = tail;
}

/* ---- values ---- */

/* Parses len decimal digits at s; -1 if not all digits, -2 if > max. */
static int parse_uint(const char *s, int len, uint64_t max, uint64_t *v)
{
	uint64_t x = 0;
	int big = 0;

	if (len <= 0)
		return -1;
	for (int i = 0; i < len; i++) {
		if (!is_digit(s[i]))
			return -1;
		if (x > (UINT64_MAX - (uint64_t)(s[i] - '0')) / 10)
			big = 1;
		else
			x = x * 10 + (uint64_t)(s[i] - '0');
	}
	if (big || x > max)
		return -2;
	*v = x;
	return 0;
}

/*
 * Reads the current token as an integer 0..max and consumes it. what
 * names the value in messages ("a port number"), name in range errors
 * ("port").
 */
static int take_uint(struct parser *p, const char *what, const char *name,
		     uint64_t max, uint64_t *v)
{
	const struct tok *t = &p->tok;
	int rc;

	if (t->kind != T_WORD)
		return expected(p, what);
	rc = parse_uint(p->s + t->pos, t->len, max, v);
	if (rc == -1)
		return expected(p, what);
	if (rc == -2) {
		if (max == UINT64_MAX)
			return fail_at(p, t->pos, t->len,
				       "%s %.*s is too large", name, t->len,
				       p->s + t->pos);
		return fail_at(p, t->pos, t->len,
			       "%s %.*s is out of range (0-%llu)", name,
			       t->len > 24 ? 24 : t->len, p->s + t->pos,
			       (unsigned long long)max);
	}
	advance(p);
	return 0;
}

/* An optional comparison operator: a symbol or eq/ne/lt/le/gt/ge. */
static void take_cmp(struct parser *p, uint8_t *cmp)
{
	static const char *const words[] = {"eq", "ne", "lt", "le", "gt", "ge"};

	*cmp = C_EQ;
	if (p->tok.kind == T_CMP) {
		*cmp = p->tok.cmp;
		advance(p);
		return;
	}
	for (unsigned i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
		if (tok_is(p, &p->tok, words[i])) {
			*cmp = (uint8_t)i; /* same order as enum cmp_op */
			advance(p);
			return;
		}
	}
}

enum unit_kind { U_BYTES, U_PKTS, U_DURATION };

struct unit {
	const char *name;
	uint64_t mul;
};

static const struct unit bytes_units[] = {
	{"", 1},
	{"b", 1},
	{"k", 1000ULL},
	{"m", 1000000ULL},
	{"g", 1000000000ULL},
	{"t", 1000000000000ULL},
	{"kb", 1000ULL},
	{"mb", 1000000ULL},
	{"gb", 1000000000ULL},
	{"tb", 1000000000000ULL},
	{"kib", 1ULL << 10},
	{"mib", 1ULL << 20},
	{"gib", 1ULL << 30},
	{"tib", 1ULL << 40},
	{NULL, 0},
};

static const struct unit pkts_units[] = {
	{"", 1},
	{"k", 1000ULL},
	{"m", 1000000ULL},
	{"g", 1000000000ULL},
	{"t", 1000000000000ULL},
	{NULL, 0},
};

static const struct unit duration_units[] = {
	{"", FV_NSEC_PER_SEC},
	{"ns", 1},
	{"us", 1000ULL},
	{"ms", 1000000ULL},
	{"s", FV_NSEC_PER_SEC},
	{"m", 60 * FV_NSEC_PER_SEC},
	{"min", 60 * FV_NSEC_PER_SEC},
	{"h", 3600 * FV_NSEC_PER_SEC},
	{"d", 86400 * FV_NSEC_PER_SEC},
	{NULL, 0},
};

/*
 * Reads the current token as a number with an optional fraction and
 * unit suffix ("1.5M", "250ms") and consumes it. The result, scaled by
 * the unit, must be a whole number that fits in 64 bits.
 */
static int take_scaled(struct parser *p, enum unit_kind kind, uint64_t *v)
{
	static const struct unit *const tables[] = {bytes_units, pkts_units,
						    duration_units};
	static const char *const hints[] = {
		"use K, M, G or T (powers of 1000) or KiB, MiB, GiB, TiB",
		"use K, M, G or T (powers of 1000)",
		"use ns, us, ms, s, m, h or d",
	};
	static const char *const whole[] = {"bytes", "packets", "nanoseconds"};
	const struct tok *t = &p->tok;
	const char *s = p->s + t->pos;
	const struct unit *u;
	unsigned __int128 total, fracv;
	uint64_t ip = 0, fp = 0, den = 1;
	int i = 0, nd, fd = 0, rc;

	if (t->kind != T_WORD || !is_digit(s[0]))
		return expected(p, "a number");
	while (i < t->len && is_digit(s[i]))
		i++;
	nd = i;
	rc = parse_uint(s, nd, UINT64_MAX, &ip);
	if (rc == -2)
		return fail_at(p, t->pos, t->len, "number %.*s is too large",
			       t->len > 24 ? 24 : t->len, s);
	if (i < t->len && s[i] == '.') {
		i++;
		while (i < t->len && is_digit(s[i])) {
			if (fd == 18)
				return fail_at(p, t->pos + i, 1,
					       "too many decimal places in "
					       "'%.*s'",
					       t->len > 24 ? 24 : t->len, s);
			fp = fp * 10 + (uint64_t)(s[i] - '0');
			den *= 10;
			fd++;
			i++;
		}
		if (fd == 0)
			return fail_at(p, t->pos + i - 1, 1,
				       "expected digits after the decimal "
				       "point in '%.*s'",
				       t->len > 24 ? 24 : t->len, s);
	}
	for (u = tables[kind]; u->name; u++)
		if (strlen(u->name) == (size_t)(t->len - i) &&
		    !strncasecmp(s + i, u->name, (size_t)(t->len - i)))
			break;
	if (!u->name)
		return fail_at(p, t->pos + i, t->len - i,
			       "unknown unit '%.*s' in '%.*s': %s",
			       t->len - i > 12 ? 12 : t->len - i, s + i,
			       t->len > 24 ? 24 : t->len, s, hints[kind]);
	fracv = (unsigned __int128)fp * u->mul;
	if (fracv % den)
		return fail_at(p, t->pos, t->len,
			       "'%.*s' is not a whole number of %s",
			       t->len > 24 ? 24 : t->len, s, whole[kind]);
	total = (unsigned __int128)ip * u->mul + fracv / den;
	if (total > UINT64_MAX)
		return fail_at(p, t->pos, t->len, "number %.*s is too large",
			       t->len > 24 ? 24 : t->len, s);
	*v = (uint64_t)total;
	advance(p);
	return 0;
}

/* Copies the current token's text (at most size - 1 bytes) to buf. */
static int tok_text(const struct parser *p, char *buf, size_t size)
{
	if (p->tok.kind != T_WORD || (size_t)p->tok.len >= size)
		return -1;
	memcpy(buf, p->s + p->tok.pos, (size_t)p->tok.len);
	buf[p->tok.len] = '\0';
	return 0;
}

/* Parses a full IPv4 or IPv6 address; returns the family or 0. */
static int parse_addr(const char *txt, uint8_t addr[16])
{
	memset(addr, 0, 16);
	if (inet_pton(AF_INET, txt, addr) == 1)
		return 4;
	if (inet_pton(AF_INET6, txt, addr) == 1)
		return 6;
	return 0;
}

/*
 * Parses an abbreviated IPv4 network ("10", "172.16", "10.1.2"): 1 to
 * 3 decimal octets. Returns the number of octets, or 0.
 */
static int parse_short_v4(const char *txt, uint8_t addr[16])
{
	int octets = 0;
	const char *q = txt;

	memset(addr, 0, 16);
	for (;;) {
		uint64_t v;
		int len = 0;

		while (is_digit(q[len]))
			len++;
		if (len == 0 || len > 3 || parse_uint(q, len, 255, &v) ||
		    octets == 3)
			return 0;
		addr[octets++] = (uint8_t)v;
		q += len;
		if (*q == '\0')
			return octets;
		if (*q != '.')
			return 0;
		q++;
	}
}

/* host / ip: one address. */
static int take_host(struct parser *p, struct fins *leaf)
{
	const struct tok t = p->tok;
	char buf[64];

	if (t.kind != T_WORD)
		return expected(p, "an IPv4 or IPv6 address");
	if (tok_text(p, buf, sizeof(buf)) ||
	    !(leaf->family = (uint8_t)parse_addr(buf, leaf->u.addr))) {
		if (t.len > 0 && t.len < 64 &&
		    memchr(p->s + t.pos, '/', (size_t)t.len))
			return fail_at(p, t.pos, t.len,
				       "'%.*s' is a network, not an address: "
				       "use 'net %.*s'",
				       t.len, p->s + t.pos, t.len,
				       p->s + t.pos);
		if (tok_is(p, &t, "and") || tok_is(p, &t, "or") ||
		    tok_is(p, &t, "not"))
			return expected(p, "an IPv4 or IPv6 address");
		if (!memchr(p->s + t.pos, ':', (size_t)t.len) &&
		    is_alpha(p->s[t.pos]))
			return fail_at(p, t.pos, t.len,
				       "'%.*s' is not an IPv4 or IPv6 address "
				       "(host names are not resolved)",
				       t.len > 48 ? 48 : t.len, p->s + t.pos);
		return fail_at(p, t.pos, t.len,
			       "'%.*s' is not an IPv4 or IPv6 address",
			       t.len > 48 ? 48 : t.len, p->s + t.pos);
	}
	advance(p);
	return 0;
}

/* Zeroes the bits of addr past plen. */
static void mask_addr(uint8_t addr[16], int plen)
{
	for (int i = 0; i < 16; i++) {
		int bits = plen - i * 8;

		if (bits <= 0)
			addr[i] = 0;
		else if (bits < 8)
			addr[i] &= (uint8_t)(0xff << (8 - bits));
	}
}

/*
 * net: "10.0.0.0/8", "2001:db8::/32", tcpdump's short forms "10/8" and
 * "172.16" (one prefix byte per octet given), a full address alone (a
 * host route), or "A.B.C.D mask M.M.M.M" / nfdump's "A.B.C.D M.M.M.M".
 * Host bits past the prefix are ignored.
 */
/* An optional netmask after a full IPv4 address, with or without "mask". */
static int take_mask(struct parser *p, uint64_t *plen)
{
	struct tok mt;
	char buf[64];
	uint8_t m[16];
	uint32_t mv, inv;
	int has_kw = tok_is(p, &p->tok, "mask");

	if (has_kw)
		advance(p);
	mt = p->tok;
	if (tok_text(p, buf, sizeof(buf)) || parse_addr(buf, m) != 4 ||
	    !strchr(buf, '.'))
		return has_kw ? expected(p, "a netmask such as 255.255.0.0")
			      : 0;
	mv = fv_be32(m);
	inv = ~mv;
	if (inv & (inv + 1))
		return fail_at(p, mt.pos, mt.len,
			       "'%.*s' is not a netmask (its one bits must "
			       "come first)",
			       mt.len, p->s + mt.pos);
	*plen = (uint64_t)__builtin_popcount(mv);
	advance(p);
	return 0;
}

static int fail_net(struct parser *p, const struct tok *t)
{
	return fail_at(p, t->pos, t->len,
		       "'%.*s' is not a network (expected e.g. 10.0.0.0/8 or "
		       "2001:db8::/32)",
		       t->len > 48 ? 48 : t->len, p->s + t->pos);
}

static int take_net(struct parser *p, struct fins *leaf)
{
	const struct tok t = p->tok;
	const char *s = p->s + t.pos;
	const char *slash;
	char buf[64];
	int maxbits, alen, fam, rc;
	uint64_t plen;

	if (t.kind != T_WORD)
		return expected(p, "a network such as 10.0.0.0/8");
	if (tok_is(p, &t, "and") || tok_is(p, &t, "or") || tok_is(p, &t, "not"))
		return expected(p, "a network such as 10.0.0.0/8");
	slash = memchr(s, '/', (size_t)t.len);
	alen = slash ? (int)(slash - s) : t.len;
	if (alen >= (int)sizeof(buf))
		return fail_net(p, &t);
	memcpy(buf, s, (size_t)alen);
	buf[alen] = '\0';
	fam = parse_addr(buf, leaf->u.addr);
	if (fam) {
		maxbits = fam == 4 ? 32 : 128;
		plen = (uint64_t)maxbits;
	} else {
		int octets = parse_short_v4(buf, leaf->u.addr);

		if (!octets)
			return fail_net(p, &t);
		fam = 4;
		maxbits = 32;
		plen = (uint64_t)octets * 8;
	}
	leaf->family = (uint8_t)fam;
	if (slash) {
		const char *d = slash + 1;
		int dlen = t.len - alen - 1;

		rc = parse_uint(d, dlen, (uint64_t)maxbits, &plen);
		if (dlen == 0)
			return fail_at(p, t.pos + alen, 1,
				       "expected a prefix length after '/' in "
				       "'%.*s'",
				       t.len > 48 ? 48 : t.len, s);
		if (rc == -1)
			return fail_at(p, t.pos + alen + 1, dlen,
				       "'%.*s' is not a prefix length",
				       dlen > 24 ? 24 : dlen, d);
		if (rc == -2)
			return fail_at(p, t.pos + alen + 1, dlen,
				       "prefix length %.*s is out of range "
				       "for IPv%d (0-%d)",
				       dlen > 24 ? 24 : dlen, d, fam, maxbits);
		advance(p);
		if (tok_is(p, &p->tok, "mask"))
			return fail_at(p, p->tok.pos, p->tok.len,
				       "'mask' cannot follow a prefix length: "
				       "write either %.*s or %.*s mask "
				       "M.M.M.M",
				       t.len > 48 ? 48 : t.len, s,
				       alen > 40 ? 40 : alen, s);
	} else {
		advance(p);
		if (fam == 4 && plen == 32) {
			rc = take_mask(p, &plen);
			if (rc)
				return rc;
		}
	}
	leaf->plen = (uint8_t)plen;
	mask_addr(leaf->u.addr, (int)plen);
	return 0;
}

static int take_port(struct parser *p, struct fins *leaf)
{
	return take_uint(p, "a port number", "port", 65535, &leaf->val);
}

struct proto_name {
	const char *name;
	uint8_t num;
};

static const struct proto_name protos[] = {
	{"icmp", 1},	   {"igmp", 2},	 {"tcp", 6},   {"udp", 17},
	{"gre", 47},	   {"esp", 50},	 {"ah", 51},   {"icmp6", 58},
	{"ipv6-icmp", 58}, {"ospf", 89}, {"pim", 103}, {"sctp", 132},
	{NULL, 0},
};

static const struct proto_name *proto_lookup(const struct parser *p,
					     const struct tok *t)
{
	for (const struct proto_name *pn = protos; pn->name; pn++)
		if (tok_is(p, t, pn->name))
			return pn;
	return NULL;
}

static int take_proto(struct parser *p, struct fins *leaf)
{
	const struct tok t = p->tok;
	const struct proto_name *pn = proto_lookup(p, &t);

	if (pn) {
		leaf->val = pn->num;
		advance(p);
		return 0;
	}
	if (t.kind == T_WORD && is_alpha(p->s[t.pos]) &&
	    !tok_is(p, &t, "and") && !tok_is(p, &t, "or") &&
	    !tok_is(p, &t, "not"))
		return fail_at(p, t.pos, t.len,
			       "unknown protocol '%.*s': use tcp, udp, icmp, "
			       "icmp6, sctp, gre, esp, ah or a number 0-255",
			       t.len > 24 ? 24 : t.len, p->s + t.pos);
	return take_uint(p, "a protocol name or number", "protocol number", 255,
			 &leaf->val);
}

static int take_vlan(struct parser *p, struct fins *leaf)
{
	return take_uint(p, "a VLAN id", "VLAN id", 4095, &leaf->val);
}

static int take_flow(struct parser *p, struct fins *leaf)
{
	return take_uint(p, "a flow id", "flow id", UINT64_MAX, &leaf->val);
}

/* TCP flags as tcpdump/nfdump letters, in bit order. */
static const char flag_letters[] = "FSRPAUEC";

static int take_flags(struct parser *p, struct fins *leaf)
{
	const struct tok t = p->tok;
	const char *what = "TCP flags (letters of FSRPAUEC)";

	if (t.kind != T_WORD || tok_is(p, &t, "and") || tok_is(p, &t, "or") ||
	    tok_is(p, &t, "not"))
		return expected(p, what);
	leaf->val = 0;
	for (int i = 0; i < t.len; i++) {
		char c = p->s[t.pos + i];
		const char *f = NULL;

		if (is_alpha(c))
			f = strchr(flag_letters, c & ~0x20);
		if (!f)
			return fail_at(p, t.pos + i, 1,
				       "unknown TCP flag '%c' in '%.*s': use "
				       "F S R P A U E C",
				       c, t.len > 24 ? 24 : t.len,
				       p->s + t.pos);
		leaf->val |= 1u << (f - flag_letters);
	}
	advance(p);
	return 0;
}

static int is_b64(int c)
{
	return is_alpha(c) || is_digit(c) || c == '+' || c == '/';
}

/* cid: a Community ID v1 string, "1:" + base64 of a SHA-1, quoted or not. */
static int take_cid(struct parser *p, struct fins *leaf)
{
	struct tok t;
	const char *s;
	int len, ok;

	lex_raw_at(p, p->tok.pos, &t);
	if (t.kind != T_WORD && t.kind != T_STRING) {
		if (t.kind == T_BAD && p->s[t.pos] == '"')
			return fail_at(p, t.pos, 1,
				       "unbalanced quote: this '\"' is never "
				       "closed");
		return expected(p, "a Community ID such as "
				   "1:LQU9qZlK+B5F3KDmev6m5PMibrg=");
	}
	s = p->s + t.pos;
	len = t.len;
	if (t.kind == T_STRING) {
		s++;
		len -= 2;
	}
	ok = len == CID_LEN && s[0] == '1' && s[1] == ':' &&
	     s[CID_LEN - 1] == '=';
	for (int i = 2; ok && i < CID_LEN - 1; i++)
		ok = is_b64(s[i]);
	if (!ok)
		return fail_at(p, t.pos, t.len,
			       "'%.*s' is not a Community ID (expected '1:' "
			       "and 28 base64 characters)",
			       len > 40 ? 40 : len, s);
	memcpy(leaf->u.cid, s, CID_LEN);
	leaf->u.cid[CID_LEN] = '\0';
	p->tok = t;
	advance(p);
	return 0;
}

typedef int (*take_fn)(struct parser *p, struct fins *leaf);

/*
 * The argument of a primitive: one value, or with "in [ v1 v2 ... ]"
 * (commas optional) a list that matches when any value does. leaf
 * carries op and dir; cmp_ok allows a comparison before a single value.
 */
static int take_values(struct parser *p, struct fins *leaf, take_fn take,
		       int cmp_ok, int *out)
{
	struct tok open;
	int list = -1, rc, n;

	if (!tok_is(p, &p->tok, "in")) {
		if (cmp_ok)
			take_cmp(p, &leaf->cmp);
		rc = take(p, leaf);
		if (rc)
			return rc;
		n = new_leaf(p, leaf);
		if (n < 0)
			return n;
		*out = n;
		return 0;
	}
	advance(p);
	if (p->tok.kind != T_LBRACK)
		return expected(p, "'[' to open a list");
	open = p->tok;
	advance(p);
	for (;;) {
		struct fins item = *leaf;

		while (p->tok.kind == T_COMMA)
			advance(p);
		if (p->tok.kind == T_RBRACK)
			break;
		if (p->tok.kind == T_END)
			return fail_at(p, open.pos, open.len,
				       "unbalanced bracket: this '[' is never "
				       "closed");
		rc = take(p, &item);
		if (rc)
			return rc;
		n = new_leaf(p, &item);
		if (n < 0)
			return n;
		if (list < 0) {
			list = n;
		} else {
			if (p->nodes[list].kind == N_LEAF) {
				int first = list;

				list = new_node(p, N_OR);
				if (list < 0)
					return list;
				add_kid(p, list, first);
			}
			add_kid(p, list, n);
		}
	}
	if (list < 0)
		return fail_at(p, p->tok.pos, p->tok.len,
			       "empty list: put at least one value between "
			       "'[' and ']'");
	advance(p);
	*out = list;
	return 0;
}

/* Adds leaf as a node of the tree. */
static int emit(struct parser *p, const struct fins *leaf, int *out)
{
	int n = new_leaf(p, leaf);

	if (n < 0)
		return n;
	*out = n;
	return 0;
}

/* A counter compared with a number: bytes, packets, duration, ... */
static int take_compare(struct parser *p, struct fins *leaf,
			enum unit_kind unit, int *out)
{
	int rc;

	take_cmp(p, &leaf->cmp);
	rc = take_scaled(p, unit, &leaf->val);
	return rc ? rc : emit(p, leaf, out);
}

struct counter_name {
	const char *name;
	uint8_t op;
	uint8_t dir;
	uint8_t unit;
};

static const struct counter_name counters[] = {
	{"bytes", OP_BYTES, D_NONE, U_BYTES},
	{"packets", OP_PKTS, D_NONE, U_PKTS},
	{"pkts", OP_PKTS, D_NONE, U_PKTS},
	{"cbytes", OP_BYTES, D_SRC, U_BYTES},
	{"sbytes", OP_BYTES, D_DST, U_BYTES},
	{"cpackets", OP_PKTS, D_SRC, U_PKTS},
	{"spackets", OP_PKTS, D_DST, U_PKTS},
	{"cpkts", OP_PKTS, D_SRC, U_PKTS},
	{"spkts", OP_PKTS, D_DST, U_PKTS},
	{"duration", OP_DURATION, D_NONE, U_DURATION},
	{NULL, 0, 0, 0},
};

/* A word where a primitive should start, that starts none. */
static int fail_unknown(struct parser *p)
{
	const struct tok *t = &p->tok;
	const char *s = p->s + t->pos;
	int len = t->len > 48 ? 48 : t->len;
	char buf[64];
	uint8_t a[16];

	if (!tok_text(p, buf, sizeof(buf)) && parse_addr(buf, a))
		return fail_at(p, t->pos, t->len,
			       "'%.*s' needs a keyword before it, e.g. 'host "
			       "%.*s'",
			       len, s, len, s);
	if (tok_is(p, t, "app"))
		return fail_at(p, t->pos, t->len,
			       "'app' is not supported yet: flow records do "
			       "not carry an application protocol");
	if (is_digit(s[0]))
		return fail_at(p, t->pos, t->len,
			       "unexpected number '%.*s' (for several values "
			       "use a list: port in [ 80 443 ])",
			       len, s);
	return fail_at(p, t->pos, t->len,
		       "unknown keyword '%.*s' (expected host, net, port, "
		       "proto, tcp, udp, bytes, packets, duration, flags, "
		       "...)",
		       len, s);
}

/*
 * prim := [dir] (host|ip) ADDR | [dir] net CIDR | [dir] port [CMP] NUM
 *	 | [dir] (bytes|packets|pkts) [CMP] NUM | [dir] flags LETTERS
 *	 | proto NAME|NUM | NAME | ipv4 | ipv6 | vlan, flow, icmp-type,
 *	   icmp-code [CMP] NUM | cid STRING | counter [CMP] NUM | any
 * where dir is src/client, dst/server, or "src and dst" / "src or dst".
 */
static int parse_prim(struct parser *p, int *out)
{
	struct fins leaf;
	struct tok dtok = p->tok, kw;
	int dir = side_of(p, &p->tok);
	const struct proto_name *pn;
	const struct counter_name *cn;

	memset(&leaf, 0, sizeof(leaf));
	if (dir != D_NONE) {
		struct tok t1, t2;
		char got[48];

		lex_at(p, p->tok.pos + p->tok.len, &t1);
		if (is_and(p, &t1) || is_or(p, &t1)) {
			lex_at(p, t1.pos + t1.len, &t2);
			if (side_of(p, &t2) != D_NONE &&
			    side_of(p, &t2) != dir) {
				dir = is_and(p, &t1) ? D_BOTH : D_EITHER;
				advance(p);
				advance(p);
			}
		}
		advance(p);
		kw = p->tok;
		if (!(tok_is(p, &kw, "host") || tok_is(p, &kw, "ip") ||
		      tok_is(p, &kw, "net") || tok_is(p, &kw, "port") ||
		      tok_is(p, &kw, "bytes") || tok_is(p, &kw, "packets") ||
		      tok_is(p, &kw, "pkts") || tok_is(p, &kw, "flags"))) {
			if (kw.kind == T_BAD)
				return fail_bad(p);
			return fail_at(p, kw.pos, kw.len,
				       "expected host, ip, net, port, bytes, "
				       "packets or flags after '%.*s', got %s",
				       p->prev.pos + p->prev.len - dtok.pos,
				       p->s + dtok.pos,
				       describe(p, &kw, got, sizeof(got)));
		}
	}
	leaf.dir = (uint8_t)dir;
	kw = p->tok;
	if (tok_is(p, &kw, "host") || tok_is(p, &kw, "ip")) {
		leaf.op = OP_HOST;
		advance(p);
		return take_values(p, &leaf, take_host, 0, out);
	}
	if (tok_is(p, &kw, "net")) {
		leaf.op = OP_NET;
		advance(p);
		return take_values(p, &leaf, take_net, 0, out);
	}
	if (tok_is(p, &kw, "port")) {
		leaf.op = OP_PORT;
		advance(p);
		return take_values(p, &leaf, take_port, 1, out);
	}
	if (tok_is(p, &kw, "flags")) {
		int rc;

		leaf.op = OP_FLAGS;
		advance(p);
		rc = take_flags(p, &leaf);
		return rc ? rc : emit(p, &leaf, out);
	}
	for (cn = counters; cn->name; cn++) {
		if (!tok_is(p, &kw, cn->name))
			continue;
		leaf.op = cn->op;
		if (dir == D_NONE)
			leaf.dir = cn->dir;
		advance(p);
		return take_compare(p, &leaf, (enum unit_kind)cn->unit, out);
	}
	if (tok_is(p, &kw, "proto")) {
		leaf.op = OP_PROTO;
		advance(p);
		return take_values(p, &leaf, take_proto, 0, out);
	}
	pn = proto_lookup(p, &kw);
	if (pn) {
		leaf.op = OP_PROTO;
		leaf.val = pn->num;
		advance(p);
		return emit(p, &leaf, out);
	}
	if (tok_is(p, &kw, "ipv4") || tok_is(p, &kw, "inet") ||
	    tok_is(p, &kw, "ip4") || tok_is(p, &kw, "ipv6") ||
	    tok_is(p, &kw, "inet6") || tok_is(p, &kw, "ip6")) {
		leaf.op = OP_FAMILY;
		leaf.family = p->s[kw.pos + kw.len - 1] == '6' ? 6 : 4;
		advance(p);
		return emit(p, &leaf, out);
	}
	if (tok_is(p, &kw, "vlan")) {
		leaf.op = OP_VLAN;
		advance(p);
		return take_values(p, &leaf, take_vlan, 1, out);
	}
	if (tok_is(p, &kw, "flow")) {
		leaf.op = OP_FLOW;
		advance(p);
		return take_values(p, &leaf, take_flow, 1, out);
	}
	if (tok_is(p, &kw, "icmp-type") || tok_is(p, &kw, "icmp-code")) {
		uint64_t v;
		int rc;

		leaf.op = p->s[kw.pos + 5] == 't' || p->s[kw.pos + 5] == 'T'
				  ? OP_ICMP_TYPE
				  : OP_ICMP_CODE;
		advance(p);
		take_cmp(p, &leaf.cmp);
		rc = take_uint(p,
			       leaf.op == OP_ICMP_TYPE ? "an ICMP type"
						       : "an ICMP code",
			       leaf.op == OP_ICMP_TYPE ? "ICMP type"
						       : "ICMP code",
			       255, &v);
		if (rc)
			return rc;
		leaf.val = v;
		return emit(p, &leaf, out);
	}
	if (tok_is(p, &kw, "cid") || tok_is(p, &kw, "community-id")) {
		int rc;

		leaf.op = OP_CID;
		advance(p);
		rc = take_cid(p, &leaf);
		return rc ? rc : emit(p, &leaf, out);
	}
	if (tok_is(p, &kw, "any")) {
		leaf.op = OP_TRUE;
		advance(p);
		return emit(p, &leaf, out);
	}
	return fail_unknown(p);
}

static int parse_expr(struct parser *p, int *out);

/* Counts one more level of nesting at the current token. */
static int enter(struct parser *p)
{
	if (++p->depth > FILTER_MAX_DEPTH)
		return fail_at(p, p->tok.pos, p->tok.len,
			       "expression nests deeper than %d levels of "
			       "parentheses and 'not'",
			       FILTER_MAX_DEPTH);
	return 0;
}

/* factor := ("not" | "!") factor | "(" expr ")" | prim */
static int parse_factor(struct parser *p, int *out)
{
	int rc, kid, n;

	if (is_not(p, &p->tok)) {
		rc = enter(p);
		if (rc)
			return rc;
		advance(p);
		rc = parse_factor(p, &kid);
		if (rc)
			return rc;
		p->depth--;
		n = new_node(p, N_NOT);
		if (n < 0)
			return n;
		add_kid(p, n, kid);
		*out = n;
		return 0;
	}
	if (p->tok.kind == T_LPAREN) {
		struct tok open = p->tok;
		char got[48];

		rc = enter(p);
		if (rc)
			return rc;
		advance(p);
		rc = parse_expr(p, out);
		if (rc)
			return rc;
		if (p->tok.kind == T_END)
			return fail_at(p, open.pos, open.len,
				       "unbalanced parenthesis: this '(' is "
				       "never closed");
		if (p->tok.kind == T_BAD)
			return fail_bad(p);
		if (p->tok.kind != T_RPAREN)
			return fail_at(p, p->tok.pos, p->tok.len,
				       "expected ')' to close the '(' at "
				       "offset %d, got %s",
				       open.pos,
				       describe(p, &p->tok, got, sizeof(got)));
		p->depth--;
		advance(p);
		return 0;
	}
	if (p->tok.kind == T_WORD && !is_and(p, &p->tok) && !is_or(p, &p->tok))
		return parse_prim(p, out);
	return expected(p, "a filter term");
}

/* True if t can start a factor: an implicit "and" before it. */
static int starts_factor(const struct parser *p, const struct tok *t)
{
	if (t->kind == T_LPAREN || t->kind == T_NOT)
		return 1;
	return t->kind == T_WORD && !is_and(p, t) && !is_or(p, t);
}

/* Builds an n-ary node of kind from factors (AND) or terms (OR). */
static int parse_chain(struct parser *p, enum node_kind kind, int *out)
{
	int rc, left, right, n = -1;

	rc = kind == N_AND ? parse_factor(p, &left)
			   : parse_chain(p, N_AND, &left);
	if (rc)
		return rc;
	for (;;) {
		if (kind == N_AND && is_and(p, &p->tok))
			advance(p);
		else if (kind == N_OR && is_or(p, &p->tok))
			advance(p);
		else if (!(kind == N_AND && starts_factor(p, &p->tok)))
			break;
		rc = kind == N_AND ? parse_factor(p, &right)
				   : parse_chain(p, N_AND, &right);
		if (rc)
			return rc;
		if (n < 0) {
			n = new_node(p, kind);
			if (n < 0)
				return n;
			add_kid(p, n, left);
		}
		add_kid(p, n, right);
	}
	*out = n < 0 ? left : n;
	return 0;
}

/* expr := term { or term }; term := factor { [and] factor } */
static int parse_expr(struct parser *p, int *out)
{
	return parse_chain(p, N_OR, out);
}

/* ---- code generation ---- */

/* Numbers the leaves of the subtree at n in source order. */
static void number_leaves(struct parser *p, int n, int *next)
{
	struct pnode *nd = &p->nodes[n];

	if (nd->kind == N_LEAF) {
		nd->first = (*next)++;
		return;
	}
	for (int c = nd->kid; c >= 0; c = p->nodes[c].next)
		number_leaves(p, c, next);
	nd->first = p->nodes[nd->kid].first;
}

/* Emits the subtree at n so that it jumps to t when true, f when false. */
static void gen(const struct parser *p, struct fins *ins, int n, int32_t t,
		int32_t f)
{
	const struct pnode *nd = &p->nodes[n];

	switch (nd->kind) {
	case N_LEAF:
		ins[nd->first] = nd->leaf;
		ins[nd->first].jt = t;
		ins[nd->first].jf = f;
		break;
	case N_NOT:
		gen(p, ins, nd->kid, f, t);
		break;
	case N_AND:
	case N_OR:
		for (int c = nd->kid; c >= 0; c = p->nodes[c].next) {
			int nx = p->nodes[c].next;
			int32_t next = nx >= 0 ? p->nodes[nx].first : -1;

			if (nd->kind == N_AND)
				gen(p, ins, c, nx >= 0 ? next : t, f);
			else
				gen(p, ins, c, t, nx >= 0 ? next : f);
		}
		break;
	}
}

/* Finds the narrowest index plan in the top-level AND of the tree. */
static void make_plan(const struct parser *p, int root,
		      struct fv_filter_plan *plan)
{
	const struct fins *host = NULL, *port = NULL, *flow = NULL;
	int c, only = -1;

	memset(plan, 0, sizeof(*plan));
	plan->kind = FV_PLAN_NONE;
	if (root < 0)
		return;
	if (p->nodes[root].kind == N_AND) {
		c = p->nodes[root].kid;
	} else {
		only = root;
		c = root;
	}
	for (; c >= 0; c = only >= 0 ? -1 : p->nodes[c].next) {
		const struct pnode *nd = &p->nodes[c];

		if (nd->kind != N_LEAF)
			continue;
		if (nd->leaf.op == OP_HOST && !host)
			host = &nd->leaf;
		else if (nd->leaf.op == OP_PORT && nd->leaf.cmp == C_EQ &&
			 !port)
			port = &nd->leaf;
		else if (nd->leaf.op == OP_FLOW && nd->leaf.cmp == C_EQ &&
			 !flow)
			flow = &nd->leaf;
	}
	if (flow) {
		plan->kind = FV_PLAN_FLOW;
		plan->flow_id = flow->val;
	} else if (host) {
		plan->kind = FV_PLAN_HOST;
		plan->family = host->family;
		memcpy(plan->addr, host->u.addr, sizeof(plan->addr));
	} else if (port) {
		plan->kind = FV_PLAN_PORT;
		plan->port = (uint16_t)port->val;
	}
}

int fv_filter_compile(const char *expr, struct fv_filter **out,
		      struct fv_filter_error *err)
{
	struct fv_filter_error dummy;
	struct parser p;
	struct fv_filter *f;
	size_t len = strlen(expr);
	int rc, root = -1, next = 0;

	memset(&p, 0, sizeof(p));
	p.err = err ? err : &dummy;
	memset(p.err, 0, sizeof(*p.err));
	*out = NULL;
	if (len > FILTER_MAX_LEN)
		return fail_at(&p, FILTER_MAX_LEN, 0,
			       "filter is longer than %d bytes",
			       FILTER_MAX_LEN);
	p.s = expr;
	p.n = (int)len;
	p.prev.kind = T_END;
	lex_at(&p, 0, &p.tok);
	if (p.tok.kind != T_END) {
		rc = parse_expr(&p, &root);
		if (rc)
			goto out_free_nodes;
		if (p.tok.kind != T_END) {
			char got[48];

			if (p.tok.kind == T_BAD)
				rc = fail_bad(&p);
			else if (p.tok.kind == T_RPAREN)
				rc = fail_at(&p, p.tok.pos, p.tok.len,
					     "unbalanced parenthesis: this ')' "
					     "has no matching '('");
			else
				rc = fail_at(
					&p, p.tok.pos, p.tok.len,
					"unexpected %s after '%.*s'",
					describe(&p, &p.tok, got, sizeof(got)),
					p.prev.len > 32 ? 32 : p.prev.len,
					p.s + p.prev.pos);
			goto out_free_nodes;
		}
	}
	f = calloc(1, sizeof(*f) + (size_t)p.nleaves * sizeof(f->ins[0]));
	if (!f) {
		rc = -ENOMEM;
		goto out_free_nodes;
	}
	f->n = p.nleaves;
	f->start = J_ACCEPT;
	if (root >= 0) {
		number_leaves(&p, root, &next);
		gen(&p, f->ins, root, J_ACCEPT, J_REJECT);
		f->start = 0;
	}
	make_plan(&p, root, &f->plan);
	*out = f;
	rc = 0;
out_free_nodes:
	free(p.nodes);
	if (rc == -ENOMEM)
		snprintf(p.err->msg, sizeof(p.err->msg), "out of memory");
	return rc;
}

void fv_filter_free(struct fv_filter *f)
{
	free(f);
}

/* ---- matching ---- */

static int cmp_u64(int cmp, uint64_t a, uint64_t b)
{
	switch (cmp) {
	case C_EQ:
		return a == b;
	case C_NE:
		return a != b;
	case C_LT:
		return a < b;
	case C_LE:
		return a <= b;
	case C_GT:
		return a > b;
	default:
		return a >= b;
	}
}

/* Protocols whose flow keys carry real port numbers. */
static int has_ports(uint8_t proto)
{
	return proto == 6 || proto == 17 || proto == 132;
}

static int prefix_eq(const uint8_t *a, const uint8_t *net, int plen)
{
	int full = plen / 8, rest = plen % 8;

	if (memcmp(a, net, (size_t)full))
		return 0;
	if (!rest)
		return 1;
	return ((a[full] ^ net[full]) & (0xff << (8 - rest)) & 0xff) == 0;
}

/* The test of in on one side of the flow (0 client, 1 server). */
static int side_test(const struct fins *in, const struct fv_flow *fl, int side)
{
	const struct fv_flow_key *k = &fl->key;
	const uint8_t *a = side ? k->daddr : k->saddr;

	switch (in->op) {
	case OP_HOST:
		return k->family == in->family &&
		       !memcmp(a, in->u.addr, k->family == 4 ? 4 : 16);
	case OP_NET:
		return k->family == in->family &&
		       prefix_eq(a, in->u.addr, in->plen);
	case OP_PORT:
		return has_ports(k->proto) &&
		       cmp_u64(in->cmp, side ? k->dport : k->sport, in->val);
	case OP_FLAGS:
		return (fl->tcp_flags[side] & in->val) == in->val;
	case OP_BYTES:
		return cmp_u64(in->cmp, fl->bytes[side], in->val);
	case OP_PKTS:
		return cmp_u64(in->cmp, fl->pkts[side], in->val);
	}
	return 0;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? UINT64_MAX : a + b;
}

static int test_one(const struct fins *in, const struct fv_flow *fl)
{
	const struct fv_flow_key *k = &fl->key;
	char cid[64];

	switch (in->op) {
	case OP_TRUE:
		return 1;
	case OP_PROTO:
		return k->proto == in->val;
	case OP_FAMILY:
		return k->family == in->family;
	case OP_VLAN:
		return cmp_u64(in->cmp, k->vlan, in->val);
	case OP_FLOW:
		return cmp_u64(in->cmp, fl->id, in->val);
	case OP_ICMP_TYPE:
	case OP_ICMP_CODE:
		if (!((k->family == 4 && k->proto == 1) ||
		      (k->family == 6 && k->proto == 58)))
			return 0;
		return cmp_u64(in->cmp,
			       in->op == OP_ICMP_TYPE ? fl->icmp_type
						      : fl->icmp_code,
			       in->val);
	case OP_DURATION:
		return cmp_u64(in->cmp,
			       fl->last_ns > fl->first_ns
				       ? fl->last_ns - fl->first_ns
				       : 0,
			       in->val);
	case OP_CID:
		if (fv_community_id_key(k, fl->icmp_type, fl->icmp_code, 0, cid,
					sizeof(cid)))
			return 0;
		return !strcmp(cid, in->u.cid);
	}
	/* The sided tests; no direction on counters means both summed. */
	if (in->dir == D_NONE && in->op == OP_BYTES)
		return cmp_u64(in->cmp, sat_add(fl->bytes[0], fl->bytes[1]),
			       in->val);
	if (in->dir == D_NONE && in->op == OP_PKTS)
		return cmp_u64(in->cmp, sat_add(fl->pkts[0], fl->pkts[1]),
			       in->val);
	if (in->dir == D_NONE && in->op == OP_FLAGS)
		return ((fl->tcp_flags[0] | fl->tcp_flags[1]) & in->val) ==
		       in->val;
	switch (in->dir) {
	case D_NONE:
	case D_EITHER:
		return side_test(in, fl, 0) || side_test(in, fl, 1);
	case D_SRC:
		return side_test(in, fl, 0);
	case D_DST:
		return side_test(in, fl, 1);
	default:
		return side_test(in, fl, 0) && side_test(in, fl, 1);
	}
}

bool fv_filter_match(const struct fv_filter *f, const struct fv_flow *flow)
{
	int32_t pc;

	if (!f)
		return true;
	pc = f->start;
	/* Jumps only go forward, so this ends within f->n tests. */
	while (pc >= 0) {
		const struct fins *in = &f->ins[pc];

		pc = test_one(in, flow) ? in->jt : in->jf;
	}
	return pc == J_ACCEPT;
}

void fv_filter_plan(const struct fv_filter *f, struct fv_filter_plan *p)
{
	if (!f) {
		memset(p, 0, sizeof(*p));
		p->kind = FV_PLAN_NONE;
		return;
	}
	*p = f->plan;
}
