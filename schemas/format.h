/*
 * format.h - the draft-07 `format` assertions Herald checks.
 *
 * date-time, date, time (RFC 3339), email (RFC 5321 addr-spec, ASCII),
 * hostname (RFC 1123), ipv4 (dotted quad, no leading zeros), ipv6 (RFC 4291),
 * uri (absolute, RFC 3986), uri-reference (RFC 3986), uuid (RFC 4122 text
 * form), regex (ECMA-262, compiled through regex.h), json-pointer (RFC 6901).
 * Unknown formats are annotations only: they always pass.
 */
#ifndef HERALD_SCHEMAS_FORMAT_H
#define HERALD_SCHEMAS_FORMAT_H

#include <stdbool.h>
#include <stddef.h>

enum schema_format {
  SCHEMA_FORMAT_NONE = 0, /* unknown or absent: no assertion */
  SCHEMA_FORMAT_DATE_TIME,
  SCHEMA_FORMAT_DATE,
  SCHEMA_FORMAT_TIME,
  SCHEMA_FORMAT_EMAIL,
  SCHEMA_FORMAT_HOSTNAME,
  SCHEMA_FORMAT_IPV4,
  SCHEMA_FORMAT_IPV6,
  SCHEMA_FORMAT_URI,
  SCHEMA_FORMAT_URI_REFERENCE,
  SCHEMA_FORMAT_UUID,
  SCHEMA_FORMAT_REGEX,
  SCHEMA_FORMAT_JSON_POINTER,
};

/* Maps a format name to its enum; SCHEMA_FORMAT_NONE for names we do not assert. */
enum schema_format schema_format_lookup(const char *name);

/* The name of a format, for messages ("date-time"); "none" for
 * SCHEMA_FORMAT_NONE or a value outside the enum. */
const char *schema_format_name(enum schema_format f);

/* True when s[0..len) (UTF-8, may contain NUL) is valid for the format;
 * a NUL byte makes it invalid for every asserted format. Always true for
 * SCHEMA_FORMAT_NONE. Thread-safe; allocates only for SCHEMA_FORMAT_REGEX
 * (and answers false if that allocation fails). */
bool schema_format_check(enum schema_format f, const char *s, size_t len);

#endif
