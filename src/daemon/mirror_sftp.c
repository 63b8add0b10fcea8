// SPDX-License-Identifier: MIT
/*
 * The SFTP mirror target (see mirror_target.h): SFTP version 3
 * (draft-ietf-secsh-filexfer-02) spoken over one ssh channel, with many
 * requests in flight.
 *
 * URL.  sftp://USER@HOST[:PORT]/PATH?identity=FILE&known_hosts=FILE
 * &sessions=N.  PATH, absolute on the server, is the mirror's root.
 * Without identity the usual keys of the daemon's user are tried
 * (~/.ssh/id_ed25519, id_ecdsa, id_rsa); without known_hosts,
 * ~/.ssh/known_hosts.  No ssh configuration file is read: what connects
 * is what the URL says.  sessions (default SESSIONS_DEFAULT) is how many
 * of these targets the engine makes from the URL, each its own ssh
 * connection: a server's sftp-server handles one session's requests one
 * after another, fsync included, so several let a server's disk take
 * several fsyncs at once.
 *
 * Connecting.  connect() does the ssh handshake blocking, each exchange
 * bounded by CONNECT_TIMEOUT_S, takes the host key only if known_hosts
 * lists it, and authenticates with a public key only.  From then on the
 * session is non-blocking and the loop drives it; the sftp handshake and
 * making the root are a step like the others.
 *
 * Driving libssh.  Starting a step only encodes its request into out and
 * wakes the kick event: the loop writes out to the channel, so nothing
 * completes inside the call that started a step, and one channel write
 * carries all the requests of a loop turn.  libssh reads the socket into
 * buffers of its own, also while it writes, so each turn drains the
 * channel until it has nothing left instead of trusting the socket's
 * readiness alone.  What the channel's window does not take stays in out
 * until a window adjustment comes in (a read); what the socket does not
 * take stays in libssh until the socket is writable (wr).
 *
 * Requests.  A request's id names its slot: the low SLOT_BITS bits its
 * index, the rest a count of the slot's uses, so that a stray reply is
 * told from the one awaited.  The slot says which step the reply is for
 * and which handler takes it.
 *
 * put.  OPEN a temporary name beside the file, WRITE it in CHUNK pieces
 * (up to WRITE_BUDGET bytes in flight over all puts), then FSYNC,
 * FSETSTAT and CLOSE at once: a server processes the requests on one
 * file in order.  Only once all of them succeeded does posix-rename put
 * the file in place; otherwise the temporary file is removed.  symlink
 * and link make a temporary name too, then rename it over the path, as
 * SFTP has no request that replaces.
 *
 * Failure.  A lost connection (or a server silent for STALL_TIMEOUT_S
 * while requests wait) fails every step in flight, once, and the target
 * is down until connect() again.  Completions always come from the kick
 * event: a step that is over waits in the finished list until then.
 */
#include "mirror_target.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <curl/curl.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <libssh/libssh.h>
#include <utlist.h>

#define DEFAULT_PORT 22
#define CONNECT_TIMEOUT_S 10L
#define STALL_TIMEOUT_S 120
#define DEPTH 64
#define SESSIONS_DEFAULT 2
#define SESSIONS_MAX 16
#define CHUNK (32 * 1024)	/* of a WRITE */
#define WRITE_BUDGET (4U << 20) /* WRITE bytes in flight, all puts */
#define WRITE_MAX (64 * 1024)	/* given to libssh at once */
#define READ_CHUNK (64 * 1024)
#define PATH_LEN_MAX 4096	      /* a remote path, root included */
#define HANDLE_MAX 256		      /* the protocol's bound */
#define REPLY_MAX (256 * 1024 + 1024) /* OpenSSH's largest, and slack */
#define PKT_MAX (CHUNK + 3 * PATH_LEN_MAX + 1024) /* the largest request */
#define MSG_MAX 512
#define TEXT_MAX 160	      /* of a server's message */
#define TMP_NAME_MAX 200      /* of the file's name in a temporary name */
#define TMP_EXTRA (2 + 9 + 16) /* "/." NAME ".cachefs-" 16 hex digits */
#define SLOT_BITS 16
#define SLOT_MASK ((1U << SLOT_BITS) - 1)

/* SFTP version 3 packet types */
enum {
	FXP_INIT = 1,
	FXP_VERSION = 2,
	FXP_OPEN = 3,
	FXP_CLOSE = 4,
	FXP_READ = 5,
	FXP_WRITE = 6,
	FXP_LSTAT = 7,
	FXP_SETSTAT = 9,
	FXP_FSETSTAT = 10,
	FXP_OPENDIR = 11,
	FXP_READDIR = 12,
	FXP_REMOVE = 13,
	FXP_MKDIR = 14,
	FXP_RMDIR = 15,
	FXP_SYMLINK = 20,
	FXP_STATUS = 101,
	FXP_HANDLE = 102,
	FXP_DATA = 103,
	FXP_NAME = 104,
	FXP_ATTRS = 105,
	FXP_EXTENDED = 200,
};

/* ... and status codes */
enum {
	FX_OK,
	FX_EOF,
	FX_NO_SUCH_FILE,
	FX_PERMISSION_DENIED,
	FX_FAILURE,
	FX_BAD_MESSAGE,
	FX_NO_CONNECTION,
	FX_CONNECTION_LOST,
	FX_OP_UNSUPPORTED,
};

#define ATTR_SIZE 0x1U
#define ATTR_UIDGID 0x2U
#define ATTR_PERMISSIONS 0x4U
#define ATTR_ACMODTIME 0x8U
#define ATTR_EXTENDED 0x80000000U

#define OPEN_READ 0x01U
#define OPEN_WRITE 0x02U
#define OPEN_CREAT 0x08U
#define OPEN_TRUNC 0x10U

#define EXT_RENAME "posix-rename@openssh.com"
#define EXT_HARDLINK "hardlink@openssh.com"
#define EXT_FSYNC "fsync@openssh.com"

enum state { DOWN, CONNECTING, UP };

struct sftp;
struct step;
struct reply;
typedef void (*reply_fn)(struct sftp *t, struct step *s, const struct reply *r);

struct slot {
	struct step *s; /* NULL: free */
	reply_fn fn;
	const char *what; /* the request, for messages */
	uint32_t id;
	uint32_t next_free;
	uint32_t wbytes; /* a WRITE's data, in t->wbytes until answered */
	uint64_t off;	 /* a READ's range */
	uint32_t len;
};

/* One step in flight (or over, waiting for its completion). */
struct step {
	struct step *prev, *next;
	mirror_done_fn done;
	void *arg;
	int err; /* the step's failure, and msg */
	char msg[MSG_MAX];
	unsigned pending;  /* requests not answered yet */
	const char *path;  /* on the server */
	const char *path2; /* rename's to, link's old path, symlink's target */
	const char *tmp;   /* a temporary name beside path */
	struct mirror_attr attr;
	/* put */
	int fd;
	uint64_t size, off;
	bool closing; /* its handle's last requests are sent */
	/* put, list */
	unsigned char handle[HANDLE_MAX];
	uint32_t handle_len;
	/* list */
	mirror_entry_fn each;
	bool stop;
	/* read */
	mirror_data_fn data;
	uint64_t roff; /* the next READ's offset */
	unsigned reads; /* READs not answered */
	bool eof;
	/* connect: how much of the root is made */
	size_t made;
	char buf[]; /* the paths */
};

/* A reply, parsed as far as its type says. */
struct dec {
	const unsigned char *p;
	size_t n;
	bool bad;
};

struct reply {
	unsigned char type;
	uint32_t code;	     /* STATUS's, FX_OK for any other type */
	char text[TEXT_MAX]; /* STATUS's message, one line */
	const char *what;
	uint64_t off; /* of a READ: the range asked for */
	uint32_t len;
	struct dec d; /* the rest */
};

struct attrs {
	uint32_t flags;
	uint64_t size;
	uint32_t perm, mtime;
};

struct sftp {
	struct event_base *base;
	char *host, *user, *identity, *known_hosts, *ssh_dir;
	unsigned port;
	unsigned sessions;  /* the URL's sessions=, 0: not given */
	char *root;	    /* on the server, no trailing "/": "" is "/" */

	enum state state;
	ssh_session ssh;
	ssh_channel ch;
	struct event *rd, *wr; /* the session's socket */
	struct event *kick;    /* completions, then the channel's I/O */
	struct event *stall;
	struct evbuffer *out, *in;
	bool openssh; /* SYMLINK's paths in OpenSSH's order */
	bool has_rename, has_hardlink, has_fsync;
	struct step *connecting;
	bool version_due; /* INIT sent, VERSION not back */

	struct slot *slots;
	uint32_t nslots, free_slot;
	uint32_t outstanding; /* requests not answered, INIT included */
	uint64_t wbytes;
	bool starved; /* a put waits for WRITE_BUDGET */

	struct step *steps;    /* in flight */
	struct step *finished; /* their completions due */
	/*
	 * Completions of steps that could not even be allocated: -ENOMEM.
	 * The engine keeps at most DEPTH steps in flight.
	 */
	struct {
		mirror_done_fn done;
		void *arg;
	} nomem[DEPTH];
	unsigned nnomem;

	unsigned busy; /* in a callback of the loop */
	bool dead;     /* destroyed meanwhile: freed when the callback ends */

	size_t pkt_len; /* the request being built */
	bool pkt_over;
	unsigned char pkt[PKT_MAX];
};

static struct sftp *sftp_of(struct mirror_target *t)
{
	return (struct sftp *)t;
}

/* ---- steps ---------------------------------------------------------- */

static void kick(struct sftp *t)
{
	event_active(t->kick, EV_TIMEOUT, 0);
}

static int vset_err(struct step *s, int err, const char *fmt, va_list ap)
{
	s->err = err;
	vsnprintf(s->msg, sizeof(s->msg), fmt, ap);
	return err;
}

/* s fails with err (or 0: it does not) and this message. */
__attribute__((format(printf, 3, 4))) static int
set_err(struct step *s, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vset_err(s, err, fmt, ap);
	va_end(ap);
	return err;
}

/* s fails with err, unless it failed already: the first cause is told. */
__attribute__((format(printf, 3, 4))) static int fail(struct step *s, int err,
						      const char *fmt, ...)
{
	va_list ap;

	if (s->err)
		return err;
	va_start(ap, fmt);
	vset_err(s, err, fmt, ap);
	va_end(ap);
	return err;
}

static void drop_session(struct sftp *t, bool polite);

/* What looked like a failure of s is not one. */
static void unfail(struct step *s)
{
	s->err = 0;
	s->msg[0] = '\0';
}

/* s is over once its requests are answered; its completion is then due. */
static void settle(struct sftp *t, struct step *s)
{
	if (s->pending)
		return;
	if (s == t->connecting) {
		t->connecting = NULL;
		if (s->err)
			drop_session(t, true);
		else
			t->state = UP;
	}
	DL_DELETE(t->steps, s);
	DL_APPEND(t->finished, s);
	kick(t);
}

/* The completions due: those of steps over and of steps never made. */
static void run_finished(struct sftp *t)
{
	struct step *list = t->finished, *s;
	unsigned n = t->nnomem;
	char msg[MSG_MAX];

	t->finished = NULL;
	while ((s = list)) {
		mirror_done_fn done = s->done;
		void *arg = s->arg;
		int err = s->err;

		DL_DELETE(list, s);
		if (err)
			memcpy(msg, s->msg, sizeof(msg));
		free(s);
		/* destroyed by a completion: the others are dropped */
		if (!t->dead)
			done(arg, err, err ? msg : NULL);
	}
	for (unsigned i = 0; i < n && !t->dead; i++)
		t->nomem[i].done(t->nomem[i].arg, -ENOMEM, "out of memory");
	if (!t->dead) {
		/* those that came meanwhile */
		memmove(t->nomem, t->nomem + n,
			(t->nnomem - n) * sizeof(*t->nomem));
		t->nnomem -= n;
	}
}

static void nomem(struct sftp *t, mirror_done_fn done, void *arg)
{
	if (t->nnomem < DEPTH) {
		t->nomem[t->nnomem].done = done;
		t->nomem[t->nnomem++].arg = arg;
	}
	kick(t);
}

/* Bytes the server's path for mirror path p takes, its NUL included. */
static size_t remote_len(const struct sftp *t, const char *p)
{
	if (!strcmp(p, "/"))
		return t->root[0] ? strlen(t->root) + 1 : 2;
	return strlen(t->root) + strlen(p) + 1;
}

static char *remote_cpy(const struct sftp *t, const char *p, char *dst)
{
	if (!strcmp(p, "/"))
		strcpy(dst, t->root[0] ? t->root : "/");
	else
		sprintf(dst, "%s%s", t->root, p);
	return dst;
}

/*
 * ".NAME.cachefs-HHHHHHHHHHHHHHHH" beside path: hidden, never a name the
 * mirror has, and the same for every step on path (the engine never has
 * two of them in flight), so that a step done again after a crash takes
 * over what the one cut short left, and a remove removes it too.  NAME
 * is cut so that the name stays in NAME_MAX; H is a hash of the path.
 */
static char *tmp_cpy(struct sftp *t, const char *path, char *dst)
{
	const char *name = strrchr(path, '/') + 1;
	size_t len = strlen(name);
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	(void)t;
	for (const char *c = path; *c; c++)
		h = (h ^ (unsigned char)*c) * 0x100000001b3ull;
	sprintf(dst, "%.*s.%.*s.cachefs-%016llx", (int)(name - path), path,
		(int)(len < TMP_NAME_MAX ? len : TMP_NAME_MAX), name,
		(unsigned long long)h);
	return dst;
}

static bool mirror_path_ok(const char *p)
{
	return p[0] == '/';
}

/*
 * A step for path (and path2: a mirror path if rooted2, else as it is),
 * in t->steps; NULL when it failed already, its completion then due.
 * tmp: it needs a temporary name beside path.
 */
static struct step *start(struct sftp *t, mirror_done_fn done, void *arg,
			  const char *path, const char *path2, bool rooted2,
			  bool tmp)
{
	size_t n1 = remote_len(t, path), n2 = 0, nt = tmp ? n1 + TMP_EXTRA : 0;
	struct step *s;
	char *p;

	if (path2)
		n2 = rooted2 ? remote_len(t, path2) : strlen(path2) + 1;
	s = calloc(1, sizeof(*s) + n1 + n2 + nt);
	if (!s) {
		nomem(t, done, arg);
		return NULL;
	}
	s->done = done;
	s->arg = arg;
	s->fd = -1;
	p = s->buf;
	s->path = remote_cpy(t, path, p);
	p += n1;
	if (path2)
		s->path2 = rooted2 ? remote_cpy(t, path2, p) : strcpy(p, path2);
	p += n2;
	if (!mirror_path_ok(path) ||
	    (path2 && rooted2 && !mirror_path_ok(path2)))
		set_err(s, -EINVAL, "sftp: not a path in the mirror: %s", path);
	else if (tmp && !strcmp(path, "/"))
		set_err(s, -EINVAL, "sftp: the root cannot be replaced");
	else if (n1 + nt > PATH_LEN_MAX || n2 > PATH_LEN_MAX)
		set_err(s, -ENAMETOOLONG, "sftp: path too long: %s", path);
	else if (t->state != UP)
		set_err(s, -ECONNRESET, "sftp: not connected to %s:%u", t->host,
			t->port);
	if (s->err) {
		DL_APPEND(t->finished, s);
		kick(t);
		return NULL;
	}
	if (tmp)
		s->tmp = tmp_cpy(t, s->path, p);
	DL_APPEND(t->steps, s);
	return s;
}

/* ---- requests ------------------------------------------------------- */

static void be32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)(v >> 24);
	p[1] = (unsigned char)(v >> 16);
	p[2] = (unsigned char)(v >> 8);
	p[3] = (unsigned char)v;
}

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* Room for n more bytes of the request being built, or NULL. */
static unsigned char *pkt_room(struct sftp *t, size_t n)
{
	if (n > sizeof(t->pkt) - t->pkt_len) {
		t->pkt_over = true;
		return NULL;
	}
	return t->pkt + t->pkt_len;
}

static void pkt_bytes(struct sftp *t, const void *p, size_t n)
{
	unsigned char *room = pkt_room(t, n);

	if (room) {
		memcpy(room, p, n);
		t->pkt_len += n;
	}
}

static void pkt_u32(struct sftp *t, uint32_t v)
{
	unsigned char b[4];

	be32(b, v);
	pkt_bytes(t, b, 4);
}

static void pkt_u64(struct sftp *t, uint64_t v)
{
	pkt_u32(t, (uint32_t)(v >> 32));
	pkt_u32(t, (uint32_t)v);
}

static void pkt_str(struct sftp *t, const void *p, size_t n)
{
	pkt_u32(t, (uint32_t)n);
	pkt_bytes(t, p, n);
}

static void pkt_cstr(struct sftp *t, const char *s)
{
	pkt_str(t, s, strlen(s));
}

/* SFTP version 3 has whole seconds in 32 bits. */
static uint32_t wire_time(time_t sec)
{
	if (sec < 0)
		return 0;
	return (uint64_t)sec > UINT32_MAX ? UINT32_MAX : (uint32_t)sec;
}

/* a's permissions (and mtime, as atime too, with ATTR_ACMODTIME) */
static void pkt_attrs(struct sftp *t, uint32_t flags,
		      const struct mirror_attr *a)
{
	pkt_u32(t, flags);
	if (flags & ATTR_PERMISSIONS)
		pkt_u32(t, a->mode & 07777);
	if (flags & ATTR_ACMODTIME) {
		pkt_u32(t, wire_time(a->mtime.tv_sec));
		pkt_u32(t, wire_time(a->mtime.tv_sec));
	}
}

/* Starts a request of type; its id and length come with req_send(). */
static void req_begin(struct sftp *t, unsigned char type)
{
	static const unsigned char head[9];

	t->pkt_len = 0;
	t->pkt_over = false;
	pkt_bytes(t, head, sizeof(head));
	t->pkt[4] = type;
}

static void req_ext(struct sftp *t, const char *name)
{
	req_begin(t, FXP_EXTENDED);
	pkt_cstr(t, name);
}

static int slot_get(struct sftp *t, uint32_t *index)
{
	if (t->free_slot == UINT32_MAX) {
		uint32_t n = t->nslots ? t->nslots * 2 : 256;
		struct slot *more;

		if (n > SLOT_MASK + 1U)
			return -ENOBUFS;
		more = realloc(t->slots, n * sizeof(*more));
		if (!more)
			return -ENOMEM;
		memset(more + t->nslots, 0, (n - t->nslots) * sizeof(*more));
		for (uint32_t i = t->nslots; i < n; i++)
			more[i].next_free = i + 1 < n ? i + 1 : UINT32_MAX;
		t->free_slot = t->nslots;
		t->slots = more;
		t->nslots = n;
	}
	*index = t->free_slot;
	t->free_slot = t->slots[*index].next_free;
	return 0;
}

static void slot_put(struct sftp *t, uint32_t index)
{
	t->slots[index].s = NULL;
	t->slots[index].next_free = t->free_slot;
	t->free_slot = index;
}

static void slots_reset(struct sftp *t)
{
	for (uint32_t i = 0; i < t->nslots; i++) {
		t->slots[i].s = NULL;
		t->slots[i].next_free = i + 1 < t->nslots ? i + 1 : UINT32_MAX;
	}
	t->free_slot = t->nslots ? 0 : UINT32_MAX;
	t->outstanding = 0;
	t->wbytes = 0;
	t->starved = false;
}

static void stall_arm(struct sftp *t)
{
	const struct timeval tv = { .tv_sec = STALL_TIMEOUT_S };

	event_add(t->stall, &tv);
}

/*
 * Sends the request built for s, its reply to go to fn; what names it in
 * messages, wbytes is a WRITE's data.  On failure, s fails.
 */
static int req_send_slot(struct sftp *t, struct step *s, reply_fn fn,
			 const char *what, uint32_t wbytes, struct slot **out)
{
	struct slot *sl;
	uint32_t index;
	int r = t->pkt_over ? -ENAMETOOLONG : slot_get(t, &index);

	if (r < 0)
		return fail(s, r, "sftp %s %s: %s", what, s->path,
			    strerror(-r));
	sl = &t->slots[index];
	sl->id = ((sl->id >> SLOT_BITS) + 1) << SLOT_BITS | index;
	be32(t->pkt, (uint32_t)t->pkt_len - 4);
	be32(t->pkt + 5, sl->id);
	if (evbuffer_add(t->out, t->pkt, t->pkt_len) < 0) {
		slot_put(t, index);
		return fail(s, -ENOMEM, "sftp %s %s: out of memory", what,
			    s->path);
	}
	sl->s = s;
	sl->fn = fn;
	sl->what = what;
	sl->wbytes = wbytes;
	sl->off = 0;
	sl->len = 0;
	s->pending++;
	t->wbytes += wbytes;
	if (!t->outstanding++)
		stall_arm(t);
	kick(t);
	if (out)
		*out = sl;
	return 0;
}

static int req_send(struct sftp *t, struct step *s, reply_fn fn,
		    const char *what, uint32_t wbytes)
{
	return req_send_slot(t, s, fn, what, wbytes, NULL);
}

/* A request on one path, the whole of it. */
static int req_path(struct sftp *t, struct step *s, unsigned char type,
		    const char *path, reply_fn fn, const char *what)
{
	req_begin(t, type);
	pkt_cstr(t, path);
	return req_send(t, s, fn, what, 0);
}

/* A request on s's open handle. */
static int req_handle(struct sftp *t, struct step *s, unsigned char type,
		      reply_fn fn, const char *what)
{
	req_begin(t, type);
	pkt_str(t, s->handle, s->handle_len);
	return req_send(t, s, fn, what, 0);
}

/* An extension taking two paths. */
static int req_ext2(struct sftp *t, struct step *s, const char *ext,
		    const char *a, const char *b, reply_fn fn, const char *what)
{
	req_ext(t, ext);
	pkt_cstr(t, a);
	pkt_cstr(t, b);
	return req_send(t, s, fn, what, 0);
}

/* ---- replies -------------------------------------------------------- */

static uint32_t dec_u32(struct dec *d)
{
	uint32_t v;

	if (d->n < 4) {
		d->bad = true;
		return 0;
	}
	v = get_be32(d->p);
	d->p += 4;
	d->n -= 4;
	return v;
}

static uint64_t dec_u64(struct dec *d)
{
	uint64_t hi = dec_u32(d);

	return hi << 32 | dec_u32(d);
}

/* A string's bytes (not NUL-terminated), or NULL. */
static const char *dec_str(struct dec *d, uint32_t *len)
{
	const char *p;

	*len = dec_u32(d);
	if (d->bad || *len > d->n) {
		d->bad = true;
		*len = 0;
		return NULL;
	}
	p = (const char *)d->p;
	d->p += *len;
	d->n -= *len;
	return p;
}

static void dec_attrs(struct dec *d, struct attrs *a)
{
	uint32_t n, len;

	memset(a, 0, sizeof(*a));
	a->flags = dec_u32(d);
	if (a->flags & ATTR_SIZE)
		a->size = dec_u64(d);
	if (a->flags & ATTR_UIDGID) {
		dec_u32(d);
		dec_u32(d);
	}
	if (a->flags & ATTR_PERMISSIONS)
		a->perm = dec_u32(d);
	if (a->flags & ATTR_ACMODTIME) {
		dec_u32(d);
		a->mtime = dec_u32(d);
	}
	if (a->flags & ATTR_EXTENDED) {
		n = dec_u32(d);
		for (uint32_t i = 0; i < n && !d->bad; i++) {
			dec_str(d, &len);
			dec_str(d, &len);
		}
	}
}

static bool str_is(const char *p, uint32_t len, const char *s)
{
	return p && len == strlen(s) && !memcmp(p, s, len);
}

static int fx_errno(uint32_t code)
{
	switch (code) {
	case FX_OK:
		return 0;
	case FX_NO_SUCH_FILE:
		return -ENOENT;
	case FX_PERMISSION_DENIED:
		return -EACCES;
	case FX_BAD_MESSAGE:
		return -EINVAL;
	case FX_NO_CONNECTION:
	case FX_CONNECTION_LOST:
		return -ECONNRESET;
	case FX_OP_UNSUPPORTED:
		return -ENOTSUP;
	default: /* FX_FAILURE, an FX_EOF not due, what version 3 lacks */
		return -EIO;
	}
}

/* STATUS's code and message, the message made one line. */
static void dec_status(struct reply *r)
{
	static const char *const names[] = {
		"ok",
		"end of file",
		"no such file",
		"permission denied",
		"failure",
		"bad message",
		"no connection",
		"connection lost",
		"operation unsupported",
	};
	uint32_t len;
	const char *text;
	size_t n = 0;

	r->code = dec_u32(&r->d);
	text = dec_str(&r->d, &len); /* old servers end here */
	for (uint32_t i = 0; text && i < len && n < sizeof(r->text) - 1; i++)
		r->text[n++] = (unsigned char)text[i] < ' ' ? ' ' : text[i];
	r->text[n] = '\0';
	if (!n)
		snprintf(r->text, sizeof(r->text), "%s",
			 r->code < sizeof(names) / sizeof(*names)
				 ? names[r->code]
				 : "unknown status");
}

/*
 * The failure in r, a reply that should be STATUS OK, recorded in s
 * about path (the first only); 0 if r is OK.
 */
static int reply_err(struct step *s, const struct reply *r, const char *path)
{
	if (r->type != FXP_STATUS)
		return fail(s, -EIO, "sftp %s %s: unexpected reply type %u",
			    r->what, path, r->type);
	if (r->code == FX_OK)
		return 0;
	return fail(s, fx_errno(r->code), "sftp %s %s: %s", r->what, path,
		    r->text);
}

/* A reply that ends s, which had nothing else to do. */
static void replied(struct sftp *t, struct step *s, const struct reply *r)
{
	reply_err(s, r, s->path);
	settle(t, s);
}

static bool is_dir(const struct reply *r, struct attrs *a)
{
	struct dec d = r->d;

	if (r->type != FXP_ATTRS)
		return false;
	dec_attrs(&d, a);
	return !d.bad && (a->flags & ATTR_PERMISSIONS) && S_ISDIR(a->perm);
}

/* ---- the connection ------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static int lose(struct sftp *t, int err,
						      const char *fmt, ...);

static int lose_ssh(struct sftp *t)
{
	return lose(t, -ECONNRESET, "sftp: connection to %s:%u lost: %s",
		    t->host, t->port, ssh_get_error(t->ssh));
}

static void feed(struct sftp *t);
static void got_version(struct sftp *t, struct dec *d);

/* The reply in p, len bytes after its length: to its step's handler. */
static int handle_reply(struct sftp *t, const unsigned char *p, size_t len)
{
	struct reply r = { .type = p[0], .d = { p + 1, len - 1, false } };
	struct slot sl;
	uint32_t id;

	if (r.type == FXP_VERSION && t->version_due) {
		got_version(t, &r.d);
		return 0;
	}
	id = dec_u32(&r.d);
	if (r.d.bad || (id & SLOT_MASK) >= t->nslots ||
	    !t->slots[id & SLOT_MASK].s || t->slots[id & SLOT_MASK].id != id)
		return lose(t, -EIO, "sftp: %s:%u answered no request", t->host,
			    t->port);
	sl = t->slots[id & SLOT_MASK];
	slot_put(t, id & SLOT_MASK);
	sl.s->pending--;
	t->wbytes -= sl.wbytes;
	if (!--t->outstanding)
		event_del(t->stall);
	r.what = sl.what;
	r.off = sl.off;
	r.len = sl.len;
	if (r.type == FXP_STATUS)
		dec_status(&r);
	sl.fn(t, sl.s, &r);
	if (t->starved && t->wbytes < WRITE_BUDGET && t->state == UP &&
	    !t->dead)
		feed(t);
	return 0;
}

/* Hands the complete replies in t->in to their steps. */
static int dispatch(struct sftp *t)
{
	unsigned char head[4], *p;
	size_t have, len;

	for (;;) {
		have = evbuffer_get_length(t->in);
		if (have < 4)
			return 0;
		evbuffer_copyout(t->in, head, 4);
		len = get_be32(head);
		if (len < 1 || len > REPLY_MAX)
			return lose(t, -EIO, "sftp: bad packet from %s:%u",
				    t->host, t->port);
		if (have < 4 + len)
			return 0;
		p = evbuffer_pullup(t->in, (ssize_t)(4 + len));
		if (!p)
			return lose(t, -ENOMEM, "sftp: out of memory");
		if (handle_reply(t, p + 4, len) < 0)
			return -1;
		if (t->dead || t->state == DOWN)
			return -1;
		evbuffer_drain(t->in, 4 + len);
	}
}

/* Writes what the channel takes of t->out: 1 if some, 0 if none. */
static int write_out(struct sftp *t)
{
	bool wrote = false;
	size_t len;
	int n;

	while ((len = evbuffer_get_length(t->out))) {
		unsigned char *p;

		if (len > WRITE_MAX)
			len = WRITE_MAX;
		p = evbuffer_pullup(t->out, (ssize_t)len);
		if (!p)
			return lose(t, -ENOMEM, "sftp: out of memory");
		/* 0: the window is shut, or keys are being exchanged */
		n = ssh_channel_write(t->ch, p, (uint32_t)len);
		if (n < 0)
			return lose_ssh(t);
		if (!n)
			break;
		evbuffer_drain(t->out, (size_t)n);
		wrote = true;
		if ((size_t)n < len)
			break;
	}
	return wrote;
}

/*
 * Drains the channel into t->in and hands on the replies: 1 if it read
 * something, 0 if not.
 */
static int read_in(struct sftp *t)
{
	struct evbuffer_iovec v;
	char junk[1024];
	bool got = false;
	int n;

	/* the server's stderr: nothing to do with it but keep it short */
	while (ssh_channel_read_nonblocking(t->ch, junk, sizeof(junk), 1) > 0)
		;
	for (;;) {
		if (evbuffer_reserve_space(t->in, READ_CHUNK, &v, 1) < 1)
			return lose(t, -ENOMEM, "sftp: out of memory");
		n = ssh_channel_read_nonblocking(t->ch, v.iov_base, READ_CHUNK,
						 0);
		if (n <= 0)
			break;
		v.iov_len = (size_t)n;
		evbuffer_commit_space(t->in, &v, 1);
		got = true;
	}
	if (n == SSH_ERROR)
		return lose_ssh(t);
	if (n == SSH_EOF || ssh_channel_is_closed(t->ch))
		return lose(t, -ECONNRESET, "sftp: %s:%u closed the channel",
			    t->host, t->port);
	if (!got)
		return 0;
	if (t->outstanding)
		stall_arm(t);
	return dispatch(t) < 0 ? -1 : 1;
}

/*
 * Moves the channel along until neither side has anything for the other:
 * requests out, replies in, and what they start.
 */
static void pump(struct sftp *t)
{
	int w, r, f;

	while (t->state != DOWN && !t->dead) {
		w = write_out(t);
		if (w < 0)
			return;
		/* what libssh holds back for the socket (0: without waiting) */
		f = ssh_blocking_flush(t->ssh, 0);
		if (f == SSH_ERROR) {
			lose_ssh(t);
			return;
		}
		r = read_in(t);
		if (r < 0)
			return;
		if (!w && !r) {
			if (f == SSH_AGAIN)
				event_add(t->wr, NULL);
			return;
		}
	}
}

static void enter(struct sftp *t)
{
	t->busy++;
}

static void free_target(struct sftp *t);

static void leave(struct sftp *t)
{
	if (!--t->busy && t->dead)
		free_target(t);
}

static void on_io(evutil_socket_t fd, short what, void *arg)
{
	struct sftp *t = arg;

	enter(t);
	pump(t);
	leave(t);
}

static void on_kick(evutil_socket_t fd, short what, void *arg)
{
	struct sftp *t = arg;

	enter(t);
	run_finished(t);
	if (!t->dead)
		pump(t);
	leave(t);
}

static void on_stall(evutil_socket_t fd, short what, void *arg)
{
	struct sftp *t = arg;

	enter(t);
	if (t->state != DOWN && t->outstanding)
		lose(t, -ETIMEDOUT, "sftp: no answer from %s:%u in %d s",
		     t->host, t->port, STALL_TIMEOUT_S);
	leave(t);
}

/*
 * Closes the session (polite: saying goodbye).  t->in keeps its bytes:
 * a handler may be reading them; the next connect() empties it.
 */
static void drop_session(struct sftp *t, bool polite)
{
	if (t->state == DOWN)
		return;
	event_free(t->rd);
	event_free(t->wr);
	t->rd = t->wr = NULL;
	if (polite)
		ssh_disconnect(t->ssh);
	ssh_free(t->ssh); /* and its channel */
	t->ssh = NULL;
	t->ch = NULL;
	t->connecting = NULL;
	t->version_due = false;
	slots_reset(t);
	event_del(t->stall);
	t->state = DOWN;
}

/* The connection is gone: every step in flight fails with err. */
static int lose(struct sftp *t, int err, const char *fmt, ...)
{
	char msg[MSG_MAX];
	struct step *s;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	drop_session(t, false);
	while ((s = t->steps)) {
		set_err(s, err, "%s", msg);
		s->pending = 0;
		DL_DELETE(t->steps, s);
		DL_APPEND(t->finished, s);
	}
	kick(t);
	return -1;
}

/* A hint from the socket's errno (libssh says it in words only). */
static int connect_errno(void)
{
	switch (errno) {
	case ECONNREFUSED:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case ETIMEDOUT:
		return -errno;
	default:
		return -ECONNRESET;
	}
}

/* The known_hosts name of the server: "HOST" on port 22, else "[HOST]:PORT". */
static void known_name(const struct sftp *t, char *buf, size_t len)
{
	if (t->port == DEFAULT_PORT)
		snprintf(buf, len, "%s", t->host);
	else
		snprintf(buf, len, "[%s]:%u", t->host, t->port);
}

static int check_host_key(struct sftp *t, ssh_session ssh, struct step *s)
{
	enum ssh_known_hosts_e known = ssh_session_is_known_server(ssh);
	char name[300], *fp = NULL;
	unsigned char *hash = NULL;
	ssh_key key = NULL;
	size_t hlen;
	int r;

	if (known == SSH_KNOWN_HOSTS_OK)
		return 0;
	if (ssh_get_server_publickey(ssh, &key) == SSH_OK &&
	    ssh_get_publickey_hash(key, SSH_PUBLICKEY_HASH_SHA256, &hash,
				   &hlen) == 0)
		fp = ssh_get_fingerprint_hash(SSH_PUBLICKEY_HASH_SHA256, hash,
					      hlen);
	known_name(t, name, sizeof(name));
	switch (known) {
	case SSH_KNOWN_HOSTS_CHANGED:
	case SSH_KNOWN_HOSTS_OTHER:
		r = fail(
			s, -EKEYREJECTED,
			"sftp: the host key of %s (%s) is not the one %s has "
			"for it; if the server's key was changed on purpose, "
			"remove the old one (ssh-keygen -R '%s' -f %s) and add "
			"the new one (ssh-keyscan -p %u %s >> %s)",
			name, fp ? fp : "?", t->known_hosts, name,
			t->known_hosts, t->port, t->host, t->known_hosts);
		break;
	case SSH_KNOWN_HOSTS_UNKNOWN:
	case SSH_KNOWN_HOSTS_NOT_FOUND:
		r = fail(
			s, -EKEYREJECTED,
			"sftp: the host key of %s (%s) is not in %s; check it, "
			"then add it with: ssh-keyscan -p %u %s >> %s",
			name, fp ? fp : "?", t->known_hosts, t->port, t->host,
			t->known_hosts);
		break;
	default:
		r = fail(s, -EKEYREJECTED,
			 "sftp: cannot check the host key of %s against %s: %s",
			 name, t->known_hosts, ssh_get_error(ssh));
		break;
	}
	ssh_string_free_char(fp);
	ssh_clean_pubkey_hash(&hash);
	ssh_key_free(key);
	return r;
}

/* 0: in; 1: refused; else a negative errno, s failed. */
static int try_key(struct sftp *t, ssh_session ssh, struct step *s,
		   const char *file)
{
	ssh_key key;
	int rc;

	if (ssh_pki_import_privkey_file(file, NULL, NULL, NULL, &key) != SSH_OK)
		return fail(s, -EKEYREJECTED,
			    "sftp: cannot load the private key %s (one with a "
			    "passphrase cannot be used)",
			    file);
	rc = ssh_userauth_publickey(ssh, NULL, key);
	ssh_key_free(key);
	if (rc == SSH_AUTH_SUCCESS)
		return 0;
	if (rc == SSH_AUTH_ERROR)
		return fail(s, -ECONNRESET, "sftp: authenticating to %s:%u: %s",
			    t->host, t->port, ssh_get_error(ssh));
	return 1;
}

static int authenticate(struct sftp *t, ssh_session ssh, struct step *s)
{
	static const char *const defaults[] = { "id_ed25519", "id_ecdsa",
						"id_rsa" };
	char file[PATH_LEN_MAX];
	bool any = false;
	int r = 1;

	if (t->identity)
		r = try_key(t, ssh, s, t->identity);
	for (size_t i = 0; !t->identity && r == 1 && i < 3; i++) {
		snprintf(file, sizeof(file), "%s/%s", t->ssh_dir, defaults[i]);
		if (access(file, F_OK) == 0) {
			any = true;
			r = try_key(t, ssh, s, file);
		}
	}
	if (r != 1)
		return r;
	if (!t->identity && !any)
		return fail(s, -EKEYREJECTED,
			    "sftp: no identity= in the URL and no key in %s",
			    t->ssh_dir);
	return fail(s, -EKEYREJECTED, "sftp: %s%s%s:%u did not accept %s%s",
		    t->user ? t->user : "", t->user ? "@" : "", t->host,
		    t->port, t->identity ? "the key " : "the keys in ",
		    t->identity ? t->identity : t->ssh_dir);
}

/* The ssh session, blocking, up to the sftp subsystem; else s fails. */
static int open_session(struct sftp *t, struct step *s)
{
	ssh_session ssh = ssh_new();
	ssh_channel ch = NULL;
	long timeout = CONNECT_TIMEOUT_S;
	bool no = false;
	int yes = 1, port = (int)t->port, fd, r;

	if (!ssh)
		return fail(s, -ENOMEM, "sftp: out of memory");
	/* without NODELAY, small requests wait for delayed ACKs */
	if (ssh_options_set(ssh, SSH_OPTIONS_HOST, t->host) < 0 ||
	    ssh_options_set(ssh, SSH_OPTIONS_PORT, &port) < 0 ||
	    (t->user && ssh_options_set(ssh, SSH_OPTIONS_USER, t->user) < 0) ||
	    ssh_options_set(ssh, SSH_OPTIONS_NODELAY, &yes) < 0 ||
	    ssh_options_set(ssh, SSH_OPTIONS_TIMEOUT, &timeout) < 0 ||
	    ssh_options_set(ssh, SSH_OPTIONS_KNOWNHOSTS, t->known_hosts) < 0 ||
	    ssh_options_set(ssh, SSH_OPTIONS_PROCESS_CONFIG, &no) < 0) {
		r = fail(s, -EINVAL, "sftp: %s", ssh_get_error(ssh));
		goto out;
	}
	errno = 0;
	if (ssh_connect(ssh) != SSH_OK) {
		r = fail(s, connect_errno(),
			 "sftp: cannot connect to %s:%u: %s", t->host, t->port,
			 ssh_get_error(ssh));
		goto out;
	}
	r = check_host_key(t, ssh, s);
	if (!r)
		r = authenticate(t, ssh, s);
	if (r)
		goto out;
	ch = ssh_channel_new(ssh);
	if (!ch || ssh_channel_open_session(ch) != SSH_OK ||
	    ssh_channel_request_subsystem(ch, "sftp") != SSH_OK) {
		r = fail(s, -ECONNRESET, "sftp: no sftp subsystem on %s:%u: %s",
			 t->host, t->port, ssh_get_error(ssh));
		goto out;
	}
	ssh_set_blocking(ssh, 0);
	/*
	 * libssh writes only once poll() says the socket takes some, but all
	 * it has: a blocking send() would wait for a peer that stopped
	 * reading.  Non-blocking, it writes what fits and keeps the rest.
	 */
	fd = ssh_get_fd(ssh);
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
		r = fail(s, -errno, "sftp: socket: %s", strerror(errno));
		goto out;
	}
	t->rd = event_new(t->base, fd, EV_READ | EV_PERSIST, on_io, t);
	t->wr = event_new(t->base, fd, EV_WRITE, on_io, t);
	if (!t->rd || !t->wr || event_add(t->rd, NULL) < 0) {
		event_free(t->rd);
		event_free(t->wr);
		t->rd = t->wr = NULL;
		r = fail(s, -ENOMEM, "sftp: out of memory");
		goto out;
	}
	t->ssh = ssh;
	t->ch = ch;
	t->openssh = ssh_get_openssh_version(ssh) != 0;
	return 0;
out:
	ssh_disconnect(ssh);
	ssh_free(ssh);
	return r;
}

static const char *root_name(const struct sftp *t)
{
	return t->root[0] ? t->root : "/";
}

/* A request on the root, or on its first len bytes. */
static int req_root(struct sftp *t, struct step *s, unsigned char type,
		    size_t len, reply_fn fn, const char *what)
{
	req_begin(t, type);
	if (len)
		pkt_str(t, t->root, len);
	else
		pkt_cstr(t, "/");
	if (type == FXP_MKDIR)
		pkt_u32(t, 0); /* no attributes: the server's defaults */
	return req_send(t, s, fn, what, 0);
}

static void root_made(struct sftp *t, struct step *s, const struct reply *r);

/* The root's LSTAT: connected if it is a directory. */
static void root_found(struct sftp *t, struct step *s, const struct reply *r)
{
	struct attrs a;

	if (r->code == FX_NO_SUCH_FILE && !s->made) {
		root_made(t, s, NULL);
		return;
	}
	if (r->type != FXP_ATTRS)
		reply_err(s, r, root_name(t));
	else if (!is_dir(r, &a))
		fail(s, -ENOTDIR,
		     "sftp: the root %s on %s:%u is not a directory",
		     root_name(t), t->host, t->port);
	settle(t, s);
}

/* mkdir -p of the root, a component at a time (r: the last MKDIR's). */
static void root_made(struct sftp *t, struct step *s, const struct reply *r)
{
	size_t len = strlen(t->root);
	const char *next;
	int rc;

	/* FX_FAILURE is what an existing directory gets */
	if (r && r->code != FX_FAILURE && reply_err(s, r, root_name(t))) {
		settle(t, s);
		return;
	}
	if (s->made == len) {
		rc = req_root(t, s, FXP_LSTAT, len, root_found, "lstat");
	} else {
		next = strchr(t->root + s->made + 1, '/');
		s->made = next ? (size_t)(next - t->root) : len;
		rc = req_root(t, s, FXP_MKDIR, s->made, root_made, "mkdir");
	}
	if (rc < 0)
		settle(t, s);
}

/* VERSION, the answer to INIT: what the server can do. */
static void got_version(struct sftp *t, struct dec *d)
{
	struct step *s = t->connecting;
	uint32_t version = dec_u32(d), nlen, dlen;
	const char *name;

	t->version_due = false;
	if (!--t->outstanding)
		event_del(t->stall);
	t->has_rename = t->has_hardlink = t->has_fsync = false;
	while (d->n && !d->bad) {
		name = dec_str(d, &nlen);
		dec_str(d, &dlen);
		t->has_rename |= str_is(name, nlen, EXT_RENAME);
		t->has_hardlink |= str_is(name, nlen, EXT_HARDLINK);
		t->has_fsync |= str_is(name, nlen, EXT_FSYNC);
	}
	if (d->bad)
		fail(s, -EPROTO, "sftp: bad VERSION from %s:%u", t->host,
		     t->port);
	else if (version < 3)
		fail(s, -EPROTO, "sftp: %s:%u speaks SFTP version %u, not 3",
		     t->host, t->port, version);
	else if (!t->has_rename)
		fail(s, -ENOTSUP,
		     "sftp: the SFTP server on %s:%u lacks " EXT_RENAME
		     ", without which files cannot be replaced atomically "
		     "(OpenSSH's sftp-server has it)",
		     t->host, t->port);
	else if (req_root(t, s, FXP_LSTAT, strlen(t->root), root_found,
			  "lstat") == 0)
		return;
	settle(t, s);
}

static void sftp_connect(struct mirror_target *mt, mirror_done_fn done,
			 void *arg)
{
	static const unsigned char init[] = {
		0, 0, 0, 5, FXP_INIT, 0, 0, 0, 3
	};
	struct sftp *t = sftp_of(mt);
	struct step *s = calloc(1, sizeof(*s));

	if (!s) {
		nomem(t, done, arg);
		return;
	}
	s->done = done;
	s->arg = arg;
	s->fd = -1;
	s->path = t->root;
	DL_APPEND(t->steps, s);
	if (t->state != DOWN) {
		fail(s, t->state == UP ? -EISCONN : -EALREADY,
		     "sftp: already %s %s:%u",
		     t->state == UP ? "connected to" : "connecting to", t->host,
		     t->port);
		settle(t, s);
		return;
	}
	evbuffer_drain(t->in, evbuffer_get_length(t->in));
	evbuffer_drain(t->out, evbuffer_get_length(t->out));
	if (open_session(t, s) < 0) {
		settle(t, s);
		return;
	}
	t->state = CONNECTING;
	t->connecting = s;
	if (evbuffer_add(t->out, init, sizeof(init)) < 0) {
		fail(s, -ENOMEM, "sftp: out of memory");
		settle(t, s);
		return;
	}
	t->version_due = true;
	t->outstanding = 1;
	stall_arm(t);
	kick(t);
}

/* ---- put ------------------------------------------------------------ */

static void discarded(struct sftp *t, struct step *s, const struct reply *r)
{
	settle(t, s);
}

/* s failed: its temporary file goes (settled now if that cannot be sent). */
static void discard(struct sftp *t, struct step *s)
{
	req_path(t, s, FXP_REMOVE, s->tmp, discarded, "remove");
	settle(t, s);
}

static void placed(struct sftp *t, struct step *s, const struct reply *r)
{
	if (reply_err(s, r, s->path))
		discard(t, s);
	else
		settle(t, s);
}

/* The temporary name, complete, replaces path. */
static void place(struct sftp *t, struct step *s)
{
	if (req_ext2(t, s, EXT_RENAME, s->tmp, s->path, placed, "rename") < 0)
		discard(t, s);
}

/* pread() all of n bytes at off, or fail s. */
static int read_chunk(struct step *s, unsigned char *buf, size_t n,
		      uint64_t off)
{
	size_t got = 0;
	ssize_t r;

	while (got < n) {
		r = pread(s->fd, buf + got, n - got, (off_t)(off + got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return fail(s, -errno, "sftp put %s: reading: %s",
				    s->path, strerror(errno));
		if (!r)
			return fail(s, -EIO,
				    "sftp put %s: the file is shorter than "
				    "%llu bytes",
				    s->path, (unsigned long long)s->size);
		got += (size_t)r;
	}
	return 0;
}

static void put_next(struct sftp *t, struct step *s);

static void put_replied(struct sftp *t, struct step *s, const struct reply *r)
{
	reply_err(s, r, s->path);
	put_next(t, s);
}

static int put_write(struct sftp *t, struct step *s)
{
	size_t n = s->size - s->off < CHUNK ? s->size - s->off : CHUNK;
	unsigned char *room;

	req_begin(t, FXP_WRITE);
	pkt_str(t, s->handle, s->handle_len);
	pkt_u64(t, s->off);
	pkt_u32(t, (uint32_t)n);
	room = pkt_room(t, n);
	if (room) {
		if (read_chunk(s, room, n, s->off) < 0)
			return -1;
		t->pkt_len += n;
	}
	if (req_send(t, s, put_replied, "write", (uint32_t)n) < 0)
		return -1;
	s->off += n;
	return 0;
}

/* The handle's last requests: made durable, its attributes, closed. */
static void put_close(struct sftp *t, struct step *s)
{
	s->closing = true;
	if (!s->err && t->has_fsync) {
		req_ext(t, EXT_FSYNC);
		pkt_str(t, s->handle, s->handle_len);
		req_send(t, s, put_replied, "fsync", 0);
	}
	if (!s->err) {
		req_begin(t, FXP_FSETSTAT);
		pkt_str(t, s->handle, s->handle_len);
		pkt_attrs(t, ATTR_PERMISSIONS | ATTR_ACMODTIME, &s->attr);
		req_send(t, s, put_replied, "fsetstat", 0);
	}
	req_handle(t, s, FXP_CLOSE, put_replied, "close");
}

/* After every reply on the open file: more data, or the end. */
static void put_next(struct sftp *t, struct step *s)
{
	if (!s->closing) {
		while (!s->err && s->off < s->size) {
			if (t->wbytes >= WRITE_BUDGET) {
				t->starved = true;
				return;
			}
			if (put_write(t, s) < 0)
				break;
		}
		put_close(t, s);
	}
	if (s->pending)
		return;
	if (s->err)
		discard(t, s);
	else
		place(t, s);
}

/* Puts that waited for the budget: their turn. */
static void feed(struct sftp *t)
{
	struct step *s, *next;

	t->starved = false;
	for (s = t->steps; s; s = next) {
		next = s->next; /* s may be over */
		if (s->fd >= 0 && s->handle_len && !s->closing)
			put_next(t, s);
	}
}

/* Copies the HANDLE in r into s, or fails s. */
static int take_handle(struct step *s, const struct reply *r)
{
	struct dec d = r->d;
	const char *h;
	uint32_t len;

	if (r->type != FXP_HANDLE) {
		if (!reply_err(s, r, s->path))
			fail(s, -EIO, "sftp %s %s: no handle", r->what,
			     s->path);
		return -1;
	}
	h = dec_str(&d, &len);
	if (!h || !len || len > HANDLE_MAX)
		return fail(s, -EIO, "sftp %s %s: bad handle", r->what,
			    s->path);
	memcpy(s->handle, h, len);
	s->handle_len = len;
	return 0;
}

static void put_opened(struct sftp *t, struct step *s, const struct reply *r)
{
	if (take_handle(s, r) < 0)
		settle(t, s);
	else
		put_next(t, s);
}

static void sftp_put(struct mirror_target *mt, const char *path, int fd,
		     uint64_t size, const struct mirror_attr *a,
		     mirror_done_fn done, void *arg)
{
	struct sftp *t = sftp_of(mt);
	struct step *s = start(t, done, arg, path, NULL, false, true);

	if (!s)
		return;
	s->fd = fd;
	s->size = size;
	s->attr = *a;
	req_begin(t, FXP_OPEN);
	pkt_cstr(t, s->tmp);
	pkt_u32(t, OPEN_WRITE | OPEN_CREAT | OPEN_TRUNC);
	/* unreadable until it is complete and has its own mode */
	pkt_attrs(t, ATTR_PERMISSIONS, &(struct mirror_attr){ .mode = 0600 });
	if (req_send(t, s, put_opened, "open", 0) < 0)
		settle(t, s);
}

/* ---- the other steps ------------------------------------------------ */

static void mkdir_found(struct sftp *t, struct step *s, const struct reply *r);

static void set_dir_attrs(struct sftp *t, struct step *s)
{
	req_begin(t, FXP_SETSTAT);
	pkt_cstr(t, s->path);
	pkt_attrs(t, ATTR_PERMISSIONS | ATTR_ACMODTIME, &s->attr);
	if (req_send(t, s, replied, "setstat", 0) < 0)
		settle(t, s);
}

static void mkdir_made(struct sftp *t, struct step *s, const struct reply *r)
{
	if (!reply_err(s, r, s->path)) {
		set_dir_attrs(t, s);
		return;
	}
	/* FX_FAILURE: perhaps there already, which is fine if a directory */
	if (r->code != FX_FAILURE ||
	    req_path(t, s, FXP_LSTAT, s->path, mkdir_found, "lstat") < 0)
		settle(t, s);
}

static void mkdir_found(struct sftp *t, struct step *s, const struct reply *r)
{
	struct attrs a;

	if (is_dir(r, &a)) {
		unfail(s);
		set_dir_attrs(t, s);
		return;
	}
	if (r->type == FXP_ATTRS)
		set_err(s, -EEXIST, "sftp mkdir %s: not a directory there",
			s->path);
	settle(t, s);
}

static void sftp_mkdir(struct mirror_target *mt, const char *path,
		       const struct mirror_attr *a, mirror_done_fn done,
		       void *arg)
{
	struct sftp *t = sftp_of(mt);
	struct step *s = start(t, done, arg, path, NULL, false, false);

	if (!s)
		return;
	s->attr = *a;
	req_begin(t, FXP_MKDIR);
	pkt_cstr(t, s->path);
	pkt_attrs(t, ATTR_PERMISSIONS, a);
	if (req_send(t, s, mkdir_made, "mkdir", 0) < 0)
		settle(t, s);
}

/* A SYMLINK or hardlink to the temporary name: now it replaces path. */
static void made(struct sftp *t, struct step *s, const struct reply *r)
{
	if (reply_err(s, r, s->path))
		settle(t, s);
	else
		place(t, s);
}

/*
 * A temporary name left by a step cut short (the connection lost between
 * making it and the rename, or a crash) would fail SYMLINK and LINK for
 * ever: it goes first, in the same pipeline, whatever the answer.
 */
static int clear_tmp(struct sftp *t, struct step *s)
{
	return req_path(t, s, FXP_REMOVE, s->tmp, discarded, "remove");
}

static void sftp_symlink(struct mirror_target *mt, const char *path,
			 const char *target, mirror_done_fn done, void *arg)
{
	struct sftp *t = sftp_of(mt);
	struct step *s = start(t, done, arg, path, target, false, true);

	if (!s)
		return;
	if (clear_tmp(t, s) < 0) {
		settle(t, s);
		return;
	}
	/*
	 * The draft has linkpath, then targetpath; OpenSSH's server has
	 * always taken them the other way round, and keeps it so.
	 */
	req_begin(t, FXP_SYMLINK);
	pkt_cstr(t, t->openssh ? s->path2 : s->tmp);
	pkt_cstr(t, t->openssh ? s->tmp : s->path2);
	if (req_send(t, s, made, "symlink", 0) < 0)
		settle(t, s);
}

static void sftp_link(struct mirror_target *mt, const char *oldpath,
		      const char *newpath, mirror_done_fn done, void *arg)
{
	struct sftp *t = sftp_of(mt);
	struct step *s = start(t, done, arg, newpath, oldpath, true, true);

	if (!s)
		return;
	if (!t->has_hardlink) {
		fail(s, -ENOTSUP,
		     "sftp: the server on %s:%u lacks " EXT_HARDLINK, t->host,
		     t->port);
		settle(t, s);
		return;
	}
	if (clear_tmp(t, s) < 0 ||
	    req_ext2(t, s, EXT_HARDLINK, s->path2, s->tmp, made, "link") < 0)
		settle(t, s);
}

static void removed(struct sftp *t, struct step *s, const struct reply *r)
{
	if (r->code != FX_NO_SUCH_FILE) /* none there is done */
		reply_err(s, r, s->path);
	settle(t, s);
}

/* What a put cut short by a crash left beside it: gone, or never was. */
static void tmp_removed(struct sftp *t, struct step *s, const struct reply *r)
{
	(void)r;
	settle(t, s);
}

static void sftp_remove(struct mirror_target *mt, const char *path,
			mirror_done_fn done, void *arg)
{
	struct sftp *t = sftp_of(mt);
	struct step *s = start(t, done, arg, path, NULL, false, true);

	if (!s)
		return;
	if (req_path(t, s, FXP_REMOVE, s->path, removed, "remove") < 0 ||
	    req_path(t, s, FXP_REMOVE, s->tmp, tmp_removed, "remove") < 0)
		settle(t, s);
}

/* An RMDIR that failed: gone meanwhile, not empty, or not a directory? */
static void rmdir_found(struct sftp *t, struct step *s, const struct reply *r)
{
	struct attrs a;

	if (r->code == FX_NO_SUCH_FILE)
		unfail(s);
	else if (is_dir(r, &a))
		set_err(s, -ENOTEMPTY, "sftp rmdir %s: directory not empty",
			s->path);
	else if (r->type == FXP_ATTRS)
		set_err(s, -ENOTDIR, "sftp rmdir %s: not a directory", s->path);
	settle(t, s);
}

static void rmdir_done(struct sftp *t, struct step *s, const struct reply *r)
{
	/* none there is done; FX_FAILURE wants a closer look */
	if (r->code != FX_NO_SUCH_FILE && reply_err(s, r, s->path) &&
	    r->code == FX_FAILURE &&
	    req_path(t, s, FXP_LSTAT, s->path, rmdir_found, "lstat") == 0)
		return;
	settle(t, s);
}

static void sftp_rmdir(struct mirror_target *mt, const char *path,
		       mirror_done_fn done, void *arg)
{
	struct sftp *t = sftp_of(mt);
	struct step *s = start(t, done, arg, path, NULL, false, false);

	if (s && req_path(t, s, FXP_RMDIR, s->path, rmdir_done, "rmdir") < 0)
		settle(t, s);
}

static void sftp_rename(struct mirror_target *mt, const char *from,
			const char *to, bool dir, mirror_done_fn done,
			void *arg)
{
	struct sftp *t = sftp_of(mt);
	struct step *s = start(t, done, arg, from, to, true, false);

	/* rename(2) on the server: a directory moves with its tree */
	if (s && req_ext2(t, s, EXT_RENAME, s->path, s->path2, replied,
			  "rename") < 0)
		settle(t, s);
}

static void sftp_setattr(struct mirror_target *mt, const char *path,
			 const struct mirror_attr *a, mirror_done_fn done,
			 void *arg)
{
	struct sftp *t = sftp_of(mt);
	struct step *s = start(t, done, arg, path, NULL, false, false);

	if (!s)
		return;
	req_begin(t, FXP_SETSTAT);
	pkt_cstr(t, s->path);
	pkt_attrs(t, ATTR_PERMISSIONS | ATTR_ACMODTIME, a);
	if (req_send(t, s, replied, "setstat", 0) < 0)
		settle(t, s);
}

/* ---- list ----------------------------------------------------------- */

/* The CLOSE of a handle read (list, read): the step is over. */
static void closed(struct sftp *t, struct step *s, const struct reply *r)
{
	reply_err(s, r, s->path);
	settle(t, s);
}

static void list_read(struct sftp *t, struct step *s, const struct reply *r);

/* The next READDIR, or CLOSE when done. */
static void list_more(struct sftp *t, struct step *s)
{
	if (!s->err && !s->stop &&
	    req_handle(t, s, FXP_READDIR, list_read, "readdir") == 0)
		return;
	if (req_handle(t, s, FXP_CLOSE, closed, "close") < 0)
		settle(t, s);
}

static char entry_type(uint32_t perm)
{
	switch (perm & S_IFMT) {
	case S_IFREG:
		return 'f';
	case S_IFDIR:
		return 'd';
	case S_IFLNK:
		return 'l';
	default:
		return '?';
	}
}

/* One NAME reply's entries, to each(); 0, or -1 if t was destroyed. */
static int list_names(struct sftp *t, struct step *s, struct dec *d)
{
	uint32_t count = dec_u32(d), len, llen;
	char name[NAME_MAX + 1];
	struct mirror_entry e;
	struct attrs a;
	const char *n;

	for (uint32_t i = 0; i < count && !s->stop; i++) {
		n = dec_str(d, &len);
		dec_str(d, &llen); /* ls -l's line */
		dec_attrs(d, &a);
		if (d->bad || !len || len > NAME_MAX || memchr(n, '/', len)) {
			fail(s, -EIO, "sftp readdir %s: bad reply", s->path);
			return 0;
		}
		memcpy(name, n, len);
		name[len] = '\0';
		if (!strcmp(name, ".") || !strcmp(name, ".."))
			continue;
		e = (struct mirror_entry){
			.name = name,
			.type = a.flags & ATTR_PERMISSIONS ? entry_type(a.perm)
							   : '?',
			.size = a.size,
			.attr = { .mode = a.perm & 07777,
				  .mtime = { .tv_sec = a.mtime } },
		};
		s->stop = s->each(s->arg, &e) != 0;
		if (t->dead)
			return -1;
	}
	return 0;
}

static void list_read(struct sftp *t, struct step *s, const struct reply *r)
{
	struct dec d = r->d;

	if (r->type == FXP_NAME) {
		if (list_names(t, s, &d) < 0)
			return;
	} else if (r->code == FX_EOF) {
		s->stop = true;
	} else {
		reply_err(s, r, s->path);
	}
	list_more(t, s);
}

static void list_opened(struct sftp *t, struct step *s, const struct reply *r)
{
	if (take_handle(s, r) < 0)
		settle(t, s);
	else
		list_more(t, s);
}

static void sftp_list(struct mirror_target *mt, const char *dir,
		      mirror_entry_fn each, mirror_done_fn done, void *arg)
{
	struct sftp *t = sftp_of(mt);
	struct step *s = start(t, done, arg, dir, NULL, false, false);

	if (!s)
		return;
	s->each = each;
	if (req_path(t, s, FXP_OPENDIR, s->path, list_opened, "opendir") < 0)
		settle(t, s);
}

/* ---- read ----------------------------------------------------------- */

#define READS_IN_FLIGHT 8 /* of READ_CHUNK, for one file */

static void get_read(struct sftp *t, struct step *s, const struct reply *r);

/* Ask for len bytes at off. */
static int get_ask(struct sftp *t, struct step *s, uint64_t off, uint32_t len)
{
	struct slot *sl;

	req_begin(t, FXP_READ);
	pkt_str(t, s->handle, s->handle_len);
	pkt_u64(t, off);
	pkt_u32(t, len);
	if (req_send_slot(t, s, get_read, "read", 0, &sl) < 0)
		return -1;
	sl->off = off;
	sl->len = len;
	s->reads++;
	return 0;
}

/* More READs up to the window, or, all answered, the CLOSE. */
static void get_more(struct sftp *t, struct step *s)
{
	while (!s->err && !s->stop && !s->eof && s->reads < READS_IN_FLIGHT) {
		if (get_ask(t, s, s->roff, READ_CHUNK) < 0)
			break;
		s->roff += READ_CHUNK;
	}
	if (s->reads)
		return;
	if (req_handle(t, s, FXP_CLOSE, closed, "close") < 0)
		settle(t, s);
}

/*
 * A READ's answer: its bytes, at the offset it asked for (replies may
 * come in any order), or EOF.  A short answer before the end is asked
 * again for the rest.
 */
static void get_read(struct sftp *t, struct step *s, const struct reply *r)
{
	struct dec d = r->d;
	const char *p;
	uint32_t n;

	s->reads--;
	if (r->type == FXP_DATA) {
		p = dec_str(&d, &n);
		if (!p || d.bad || n > r->len) {
			fail(s, -EIO, "sftp read %s: bad reply", s->path);
		} else if (n && !s->stop && !s->err) {
			s->stop = s->data(s->arg, r->off, p, n) != 0;
			if (t->dead)
				return;
			if (n < r->len && !s->eof && !s->stop)
				get_ask(t, s, r->off + n, r->len - n);
		}
	} else if (r->code == FX_EOF) {
		s->eof = true;
	} else {
		reply_err(s, r, s->path);
	}
	get_more(t, s);
}

static void get_opened(struct sftp *t, struct step *s, const struct reply *r)
{
	if (take_handle(s, r) < 0)
		settle(t, s);
	else
		get_more(t, s);
}

static void sftp_read(struct mirror_target *mt, const char *path,
		      mirror_data_fn each, mirror_done_fn done, void *arg)
{
	struct sftp *t = sftp_of(mt);
	struct step *s = start(t, done, arg, path, NULL, false, false);

	if (!s)
		return;
	s->data = each;
	req_begin(t, FXP_OPEN);
	pkt_cstr(t, s->path);
	pkt_u32(t, OPEN_READ);
	pkt_u32(t, 0); /* no attributes */
	if (req_send(t, s, get_opened, "open", 0) < 0)
		settle(t, s);
}

/* ---- the target ----------------------------------------------------- */

static unsigned sftp_sessions(struct mirror_target *mt)
{
	struct sftp *t = sftp_of(mt);

	return t->sessions ? t->sessions : SESSIONS_DEFAULT;
}

static unsigned sftp_depth(struct mirror_target *mt)
{
	return DEPTH;
}

/* value, %-decoded, if it is a name (no NUL inside); else NULL */
static char *unescape(const char *value, size_t len)
{
	int n;
	char *v = curl_easy_unescape(NULL, value, (int)len, &n);
	char *copy;

	if (!v)
		return NULL;
	copy = (!n || memchr(v, '\0', (size_t)n)) ? NULL : strdup(v);
	curl_free(v);
	return copy;
}

/* identity=FILE&known_hosts=FILE */
static int parse_query(struct sftp *t, const char *q, char *err, size_t errlen)
{
	while (*q) {
		size_t len = strcspn(q, "&");
		const char *eq = memchr(q, '=', len);
		size_t klen = eq ? (size_t)(eq - q) : len;
		char **dst = NULL, *end;
		unsigned long n;

		if (klen == 8 && !memcmp(q, "sessions", 8)) {
			errno = 0;
			n = eq ? strtoul(eq + 1, &end, 10) : 0;
			if (!eq || t->sessions || errno || end != q + len ||
			    !n || n > SESSIONS_MAX || eq[1] < '0' ||
			    eq[1] > '9') {
				snprintf(err, errlen,
					 "sftp URL: sessions is a number from "
					 "1 to %d, given once",
					 SESSIONS_MAX);
				return -EINVAL;
			}
			t->sessions = (unsigned)n;
			q += len + (q[len] == '&');
			continue;
		}
		if (klen == 8 && !memcmp(q, "identity", 8))
			dst = &t->identity;
		else if (klen == 11 && !memcmp(q, "known_hosts", 11))
			dst = &t->known_hosts;
		if (!dst) {
			snprintf(err, errlen,
				 "sftp URL: unknown parameter '%.*s' (there "
				 "are identity, known_hosts and sessions)",
				 (int)klen, q);
			return -EINVAL;
		}
		if (*dst || !eq) {
			snprintf(err, errlen, "sftp URL: %.*s %s", (int)klen, q,
				 *dst ? "given twice" : "needs a value");
			return -EINVAL;
		}
		*dst = unescape(eq + 1, len - klen - 1);
		if (!*dst) {
			snprintf(err, errlen, "sftp URL: bad %.*s", (int)klen,
				 q);
			return -EINVAL;
		}
		q += len + (q[len] == '&');
	}
	return 0;
}

static const char *url_error(CURLUcode rc)
{
	switch (rc) {
	case CURLUE_BAD_PORT_NUMBER:
		return "the port is not a number from 1 to 65535";
	case CURLUE_OUT_OF_MEMORY:
		return "out of memory";
	default:
		return "not a URL";
	}
}

/* The parts of the URL that u holds. */
static int parse_parts(struct sftp *t, CURLU *u, char *err, size_t errlen)
{
	char *scheme = NULL, *pass = NULL, *frag = NULL, *port = NULL,
	     *query = NULL, *end;
	unsigned long n;
	size_t len;
	int r = -EINVAL;

	curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
	curl_url_get(u, CURLUPART_FRAGMENT, &frag, 0);
	curl_url_get(u, CURLUPART_USER, &t->user, CURLU_URLDECODE);
	curl_url_get(u, CURLUPART_HOST, &t->host, 0);
	curl_url_get(u, CURLUPART_PORT, &port, 0);
	curl_url_get(u, CURLUPART_PATH, &t->root, CURLU_URLDECODE);
	curl_url_get(u, CURLUPART_QUERY, &query, 0);
	if (!scheme || strcmp(scheme, "sftp"))
		snprintf(err, errlen, "sftp URL: not sftp://");
	else if (pass)
		snprintf(err, errlen,
			 "sftp URL: no passwords, keys only (identity=)");
	else if (frag)
		snprintf(err, errlen, "sftp URL: unexpected #%s", frag);
	else if (!t->host || !t->host[0])
		snprintf(err, errlen, "sftp URL: no host");
	else if (!t->root || t->root[0] != '/')
		snprintf(err, errlen, "sftp URL: no path");
	else if (t->user && !t->user[0])
		snprintf(err, errlen, "sftp URL: empty user");
	else
		r = 0;
	if (!r && port) {
		errno = 0;
		n = strtoul(port, &end, 10);
		if (errno || *end || !n || n > 65535) {
			snprintf(err, errlen, "sftp URL: %s",
				 url_error(CURLUE_BAD_PORT_NUMBER));
			r = -EINVAL;
		}
		t->port = (unsigned)n;
	}
	if (!r && query)
		r = parse_query(t, query, err, errlen);
	if (!r && t->host[0] == '[') { /* an IPv6 address, bare for libssh */
		len = strlen(t->host);
		memmove(t->host, t->host + 1, len - 2);
		t->host[len - 2] = '\0';
	}
	if (!r) {
		len = strlen(t->root);
		while (len && t->root[len - 1] == '/')
			t->root[--len] = '\0';
	}
	curl_free(scheme);
	curl_free(pass);
	curl_free(frag);
	curl_free(port);
	curl_free(query);
	return r;
}

static int parse_url(struct sftp *t, const char *url, char *err, size_t errlen)
{
	CURLU *u = curl_url();
	CURLUcode rc;
	int r;

	if (!u) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME);
	if (rc) {
		snprintf(err, errlen, "sftp URL %s: %s", url, url_error(rc));
		r = rc == CURLUE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
	} else {
		r = parse_parts(t, u, err, errlen);
	}
	curl_url_cleanup(u);
	return r;
}

/* The files the URL did not name: in the daemon's user's ~/.ssh. */
static int find_defaults(struct sftp *t, char *err, size_t errlen)
{
	struct passwd pw, *found = NULL;
	char buf[4096];

	if (t->identity && access(t->identity, R_OK) < 0) {
		snprintf(err, errlen, "sftp URL: identity %s: %s", t->identity,
			 strerror(errno));
		return -EINVAL;
	}
	if (t->identity && t->known_hosts)
		return 0;
	getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &found);
	if (!found || !found->pw_dir || !found->pw_dir[0]) {
		snprintf(err, errlen,
			 "sftp URL: uid %u has no home directory: give "
			 "identity= and known_hosts=",
			 (unsigned)geteuid());
		return -EINVAL;
	}
	if (asprintf(&t->ssh_dir, "%s/.ssh", found->pw_dir) < 0) {
		t->ssh_dir = NULL;
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (!t->known_hosts &&
	    asprintf(&t->known_hosts, "%s/known_hosts", t->ssh_dir) < 0) {
		t->known_hosts = NULL;
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static void free_target(struct sftp *t)
{
	struct step *s;

	drop_session(t, true);
	while ((s = t->steps)) {
		DL_DELETE(t->steps, s);
		free(s);
	}
	while ((s = t->finished)) {
		DL_DELETE(t->finished, s);
		free(s);
	}
	if (t->kick)
		event_free(t->kick);
	if (t->stall)
		event_free(t->stall);
	if (t->in)
		evbuffer_free(t->in);
	if (t->out)
		evbuffer_free(t->out);
	free(t->slots);
	curl_free(t->host);
	curl_free(t->user);
	curl_free(t->root);
	free(t->identity);
	free(t->known_hosts);
	free(t->ssh_dir);
	free(t);
}

static int sftp_create(const char *url, struct event_base *base,
		       struct mirror_target **out, char *err, size_t errlen)
{
	struct sftp *t = calloc(1, sizeof(*t));
	int r;

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	t->base = base;
	t->port = DEFAULT_PORT;
	t->free_slot = UINT32_MAX;
	r = parse_url(t, url, err, errlen);
	if (!r)
		r = find_defaults(t, err, errlen);
	if (!r) {
		t->kick = event_new(base, -1, 0, on_kick, t);
		t->stall = evtimer_new(base, on_stall, t);
		t->in = evbuffer_new();
		t->out = evbuffer_new();
		if (!t->kick || !t->stall || !t->in || !t->out) {
			snprintf(err, errlen, "out of memory");
			r = -ENOMEM;
		}
	}
	if (r) {
		free_target(t);
		return r;
	}
	*out = (struct mirror_target *)t;
	return 0;
}

static void sftp_destroy(struct mirror_target *mt)
{
	struct sftp *t = sftp_of(mt);

	if (!t)
		return;
	if (t->busy)
		t->dead = true; /* in a completion: freed when it returns */
	else
		free_target(t);
}

const struct mirror_target_ops mirror_sftp_ops = {
	.scheme = "sftp",
	.create = sftp_create,
	.destroy = sftp_destroy,
	.connect = sftp_connect,
	.depth = sftp_depth,
	.sessions = sftp_sessions,
	.put = sftp_put,
	.mkdir = sftp_mkdir,
	.symlink = sftp_symlink,
	.link = sftp_link,
	.remove = sftp_remove,
	.rmdir = sftp_rmdir,
	.rename = sftp_rename,
	.setattr = sftp_setattr,
	.list = sftp_list,
	.read = sftp_read,
};
