// SPDX-License-Identifier: MIT
/*
 * Control protocol encoding and decoding (see ctl_proto.h).
 */
#include "ctl_proto.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static bool valid_cmd(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CTL_CMD_MAX)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '.' || *s == '-'))
			return false;
	return true;
}

int ctl_request_parse(const char *buf, size_t len, struct ctl_request *req,
		      char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *cmd, *args;

	memset(req, 0, sizeof(*req));
	if (len > CTL_LINE_MAX) {
		snprintf(err, errlen, "request longer than %d bytes",
			 CTL_LINE_MAX);
		return -E2BIG;
	}
	root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "malformed request: %s at column %d",
			 jerr.text, jerr.column);
		return -EINVAL;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "malformed request: not a JSON object");
		goto out_invalid;
	}
	cmd = json_object_get(root, "cmd");
	args = json_object_get(root, "args");
	if (!json_is_string(cmd) || !valid_cmd(json_string_value(cmd))) {
		snprintf(err, errlen,
			 "malformed request: \"cmd\" must be a command name");
		goto out_invalid;
	}
	if (args && !json_is_object(args)) {
		snprintf(err, errlen,
			 "malformed request: \"args\" must be an object");
		goto out_invalid;
	}
	if (json_object_size(root) != 1u + (args != NULL)) {
		snprintf(err, errlen,
			 "malformed request: only \"cmd\" and \"args\" are "
			 "allowed");
		goto out_invalid;
	}
	if (!args) {
		args = json_object();
		if (!args || json_object_set_new(root, "args", args) < 0) {
			json_decref(root);
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	req->root = root;
	req->cmd = json_string_value(cmd);
	req->args = args;
	return 0;

out_invalid:
	json_decref(root);
	return -EINVAL;
}

void ctl_request_clear(struct ctl_request *req)
{
	json_decref(req->root);
	memset(req, 0, sizeof(*req));
}

/* Dump obj as one line plus '\n'; steals obj. */
static char *dump_line(json_t *obj, size_t flags)
{
	char *s, *line;
	size_t n;

	if (!obj)
		return NULL;
	s = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII | flags);
	json_decref(obj);
	if (!s)
		return NULL;
	n = strlen(s);
	line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}

/*
 * Answers carry measurements (latencies, rates): nine significant digits
 * are plenty and keep them readable.  Requests keep every digit.
 */
char *ctl_response_ok(json_t *data)
{
	return dump_line(json_pack("{s:b, s:o}", "ok", 1, "data",
				   data ? data : json_null()),
			 JSON_REAL_PRECISION(9));
}

char *ctl_response_error(const char *msg)
{
	return dump_line(json_pack("{s:b, s:s}", "ok", 0, "error", msg), 0);
}

char *ctl_request_encode(const char *cmd, json_t *args)
{
	if (!args)
		return dump_line(json_pack("{s:s}", "cmd", cmd), 0);
	return dump_line(json_pack("{s:s, s:o}", "cmd", cmd, "args", args),
			 0);
}

int ctl_response_parse(const char *buf, size_t len, json_t **data, char *err,
		       size_t errlen)
{
	json_error_t jerr;
	json_t *root, *ok, *d;
	const char *msg;
	int r;

	*data = NULL;
	root = json_loadb(buf, len, 0, &jerr);
	if (!root) {
		snprintf(err, errlen, "malformed response from daemon: %s",
			 jerr.text);
		return -EPROTO;
	}
	ok = json_object_get(root, "ok");
	if (!json_is_boolean(ok)) {
		snprintf(err, errlen, "malformed response from daemon");
		r = -EPROTO;
	} else if (json_is_true(ok)) {
		d = json_object_get(root, "data");
		*data = json_incref(d ? d : json_null());
		r = 0;
	} else {
		msg = json_string_value(json_object_get(root, "error"));
		snprintf(err, errlen, "%s", msg ? msg : "unspecified error");
		r = 1;
	}
	json_decref(root);
	return r;
}

static bool plain_char(char c, bool first)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == ':' || c == '_' ||
	       (c == '.' && !first);
}

int ctl_socket_path(const char *mountpoint, char *buf, size_t len)
{
	enum { max = sizeof(((struct sockaddr_un *)0)->sun_path) };
	char name[max];
	size_t n = 0;
	const char *p = mountpoint;
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	while (*p == '/')
		p++;
	if (!*p)
		n = (size_t)snprintf(name, sizeof(name), "-");
	for (; *p && n < sizeof(name) - 5; p++) {
		if (*p == '/') {
			while (p[1] == '/')
				p++;
			if (p[1])
				name[n++] = '-';
		} else if (plain_char(*p, n == 0)) {
			name[n++] = *p;
		} else {
			n += (size_t)snprintf(name + n, sizeof(name) - n,
					      "\\x%02x", (unsigned char)*p);
		}
	}
	name[n < sizeof(name) ? n : sizeof(name) - 1] = '\0';
	if (*p || strlen(CTL_SOCKET_DIR) + 1 + n + 5 >= max) {
		for (p = mountpoint; *p; p++)
			h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
		snprintf(name, sizeof(name), "mnt-%016" PRIx64, h);
	}
	if ((size_t)snprintf(buf, len, "%s/%s.sock", CTL_SOCKET_DIR, name) >=
	    len)
		return -ENAMETOOLONG;
	return 0;
}
