/*
 * schema.c - compile a draft-07 JSON Schema once, validate many instances.
 *
 * Compiling happens in three steps:
 *  1. scan: walk every subschema position of a document, record for each
 *     subschema object its base URI (changed by $id) and its location, and
 *     register $id resources and "#name" anchors;
 *  2. compile: turn each subschema object into a `struct node` with its
 *     keywords decoded (numbers, sorted property tables, compiled regexes);
 *     nodes are memoised by the json_t they came from, so a $ref cycle
 *     compiles to a pointer cycle instead of recursing forever;
 *  3. $ref: resolved at compile time against the current base URI, loading
 *     other documents from the built-in meta-schema or a mapped directory.
 * Validation walks nodes and instance together and never writes to the
 * compiled form, so it is thread-safe. A depth bound turns cycles that do not
 * consume the instance (`{"$ref":"#"}`) into an error instead of a crash.
 */
#include "schema.h"

#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uriparser/Uri.h>

#include "format.h"
#include "regex.h"
#include "util/hex.h"
#include "util/json_text.h"

extern const char schema_meta_draft07[];
extern const size_t schema_meta_draft07_len;

#define META_URI "http://json-schema.org/draft-07/schema"
#define DEFAULT_BASE "urn:herald:root"
#define MAX_DOCUMENTS 64      /* documents one compile may load through $ref */
#define MAX_COMPILE_DEPTH 512 /* nesting of subschemas inside one document */

enum {
  T_NULL = 1 << 0,
  T_BOOLEAN = 1 << 1,
  T_OBJECT = 1 << 2,
  T_ARRAY = 1 << 3,
  T_NUMBER = 1 << 4,
  T_STRING = 1 << 5,
  T_INTEGER = 1 << 6,
};

struct node;

struct prop {
  const char *key;
  struct node *schema;
};

struct pattern_prop {
  struct schema_regex *re;
  struct node *schema;
};

/* One entry of `dependencies`: either a list of required names or a schema. */
struct dep {
  const char *key;
  const char **names;
  size_t name_count;
  struct node *schema;
};

struct node_list {
  struct node **v;
  size_t n;
};

struct node {
  const char *loc; /* JSON Pointer of this subschema ("" = root), prefixed with "uri#" outside the
                      root document */
  signed char boolean; /* -1: an object schema; 0/1: the boolean schema false/true */
  struct node *ref;    /* $ref: every sibling keyword is ignored */

  unsigned types; /* 0: no `type` */
  const json_t *enum_values;
  const json_t *const_value;
  bool has_const;

  const json_t *multiple_of, *maximum, *exclusive_maximum, *minimum, *exclusive_minimum;
  long long max_length, min_length; /* -1: absent */
  struct schema_regex *pattern;
  enum schema_format format;

  struct node *items; /* `items` as one schema */
  struct node_list items_tuple;
  bool items_is_tuple;
  struct node *additional_items;
  long long max_items, min_items;
  bool unique_items;
  struct node *contains;

  long long max_properties, min_properties;
  const char **required;
  size_t required_count;
  struct prop *properties; /* sorted by key */
  size_t property_count;
  struct pattern_prop *pattern_properties;
  size_t pattern_property_count;
  struct node *additional_properties;
  struct dep *dependencies;
  size_t dependency_count;
  struct node *property_names;

  struct node *if_, *then_, *else_;
  struct node_list all_of, any_of, one_of;
  struct node *not_;

  /* Every `required` name is one of the first 64 `properties`: quiet
   * validation checks them by bits set in the property loop instead of a
   * hash lookup each. */
  uint64_t required_bits;
  bool required_by_bits;

  /* Only string keywords (or a boolean schema): a property name can be
   * checked as bytes, without making a JSON string of it (propertyNames). */
  bool string_only;
};

/* ---- arena: every node and string of a compiled schema, freed at once ---- */

struct chunk {
  struct chunk *next;
  size_t used, size;
  max_align_t data[];
};

struct regex_list {
  struct schema_regex **v;
  size_t n, cap;
};

struct schema {
  struct chunk *chunks;
  struct regex_list regexes;
  json_t *documents; /* array: keeps every document the nodes borrow from alive */
  struct node *root;
};

/* Returns size bytes of zeroed memory owned by s, or NULL. */
static void *arena_alloc(struct schema *s, size_t size)
{
  size = (size + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
  struct chunk *c = s->chunks;
  if(!c || c->size - c->used < size) {
    size_t want = size > 16384 ? size : 16384;
    c = calloc(1, sizeof(*c) + want);
    if(!c)
      return NULL;
    c->size = want;
    c->next = s->chunks;
    s->chunks = c;
  }
  void *p = (char *)c->data + c->used;
  c->used += size;
  return p;
}

static char *arena_strndup(struct schema *s, const char *str, size_t len)
{
  char *p = arena_alloc(s, len + 1);
  if(p) {
    memcpy(p, str, len);
    p[len] = '\0';
  }
  return p;
}

static char *arena_printf(struct schema *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static char *arena_printf(struct schema *s, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if(n < 0)
    return NULL;
  char *p = arena_alloc(s, (size_t)n + 1);
  if(!p)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(p, (size_t)n + 1, fmt, ap);
  va_end(ap);
  return p;
}

/* ---- pointer map: json_t* -> value, open addressing, compile time only ---- */

struct ptrmap {
  const void **keys;
  void **vals;
  size_t cap, n;
};

static size_t ptr_hash(const void *p)
{
  uintptr_t x = (uintptr_t)p;
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  return (size_t)x;
}

static void *ptrmap_get(const struct ptrmap *m, const void *key)
{
  if(!m->cap)
    return NULL;
  for(size_t i = ptr_hash(key) & (m->cap - 1);; i = (i + 1) & (m->cap - 1)) {
    if(!m->keys[i])
      return NULL;
    if(m->keys[i] == key)
      return m->vals[i];
  }
}

/* Sets key -> val (replacing). Returns 0, or -1 when out of memory. */
static int ptrmap_put(struct ptrmap *m, const void *key, void *val)
{
  if((m->n + 1) * 2 > m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 256;
    const void **keys = calloc(cap, sizeof(*keys));
    void **vals = calloc(cap, sizeof(*vals));
    if(!keys || !vals) {
      free(keys);
      free(vals);
      return -1;
    }
    for(size_t i = 0; i < m->cap; i++) {
      if(!m->keys[i])
        continue;
      size_t j = ptr_hash(m->keys[i]) & (cap - 1);
      while(keys[j])
        j = (j + 1) & (cap - 1);
      keys[j] = m->keys[i];
      vals[j] = m->vals[i];
    }
    free(m->keys);
    free(m->vals);
    m->keys = keys;
    m->vals = vals;
    m->cap = cap;
  }
  size_t i = ptr_hash(key) & (m->cap - 1);
  while(m->keys[i] && m->keys[i] != key)
    i = (i + 1) & (m->cap - 1);
  if(!m->keys[i])
    m->n++;
  m->keys[i] = key;
  m->vals[i] = val;
  return 0;
}

static void ptrmap_free(struct ptrmap *m)
{
  free(m->keys);
  free(m->vals);
}

/* ---- compiler state ---- */

/* A URI (without fragment, or with a "#name" anchor) naming a json_t. */
struct resource {
  const char *uri;
  json_t *node;
};

struct compiler {
  struct schema *s;
  const struct schema_options *opts;
  bool check_meta;          /* validate each loaded document against the meta-schema */
  struct schema *meta;      /* the compiled meta-schema, when check_meta */
  const char *root_doc_uri; /* locations inside this document are bare pointers */
  struct resource *resources;
  size_t resource_count, resource_cap;
  size_t document_count;
  struct ptrmap bases; /* subschema json_t -> base URI */
  struct ptrmap locs;  /* subschema json_t -> location */
  struct ptrmap nodes; /* subschema json_t -> compiled node */
  int depth;
  char *err;
  size_t errlen;
  bool failed;
};

static void fail(struct compiler *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct compiler *c, const char *fmt, ...)
{
  if(c->failed)
    return;
  c->failed = true;
  if(c->err && c->errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
  }
}

static void fail_oom(struct compiler *c)
{
  fail(c, "out of memory");
}

/* Strips the fragment (and a lone trailing '#') from uri, in place. */
static void strip_fragment(char *uri)
{
  char *h = strchr(uri, '#');
  if(h)
    *h = '\0';
}

/* Resolves ref against base (RFC 3986). Returns an arena string or NULL. */
static char *resolve_uri(struct compiler *c, const char *base, const char *ref)
{
  UriUriA refu, baseu, absu;
  const char *errpos;
  char *out = NULL;
  bool have_ref = false, have_base = false, have_abs = false;

  if(uriParseSingleUriA(&refu, ref, &errpos) != URI_SUCCESS) {
    fail(c, "invalid URI reference \"%s\"", ref);
    goto out;
  }
  have_ref = true;
  if(uriParseSingleUriA(&baseu, base, &errpos) != URI_SUCCESS) {
    fail(c, "invalid base URI \"%s\"", base);
    goto out;
  }
  have_base = true;
  if(uriAddBaseUriExA(&absu, &refu, &baseu, URI_RESOLVE_IDENTICAL_SCHEME_COMPAT) != URI_SUCCESS) {
    fail(c, "cannot resolve \"%s\" against \"%s\"", ref, base);
    goto out;
  }
  have_abs = true;
  int chars = 0;
  if(uriToStringCharsRequiredA(&absu, &chars) != URI_SUCCESS) {
    fail_oom(c);
    goto out;
  }
  out = arena_alloc(c->s, (size_t)chars + 1);
  if(!out) {
    fail_oom(c);
    goto out;
  }
  if(uriToStringA(out, &absu, chars + 1, NULL) != URI_SUCCESS) {
    fail(c, "cannot resolve \"%s\"", ref);
    out = NULL;
  }
out:
  if(have_abs)
    uriFreeUriMembersA(&absu);
  if(have_base)
    uriFreeUriMembersA(&baseu);
  if(have_ref)
    uriFreeUriMembersA(&refu);
  return out;
}

static uint64_t str_hash(const char *s)
{
  uint64_t h = 1469598103934665603ULL;
  for(; *s; s++) {
    h ^= (unsigned char)*s;
    h *= 1099511628211ULL;
  }
  return h;
}

/* Resources are a hash table (open addressing): a schema may hold tens of
 * thousands of $ids, and a list made compiling it quadratic. */
static json_t *resource_find(const struct compiler *c, const char *uri)
{
  if(!c->resource_cap)
    return NULL;
  for(size_t i = str_hash(uri) & (c->resource_cap - 1);; i = (i + 1) & (c->resource_cap - 1)) {
    if(!c->resources[i].uri)
      return NULL;
    if(!strcmp(c->resources[i].uri, uri))
      return c->resources[i].node;
  }
}

/* Registers uri -> node; the first registration of a URI wins. */
static void resource_add(struct compiler *c, const char *uri, json_t *node)
{
  if(resource_find(c, uri))
    return;
  if((c->resource_count + 1) * 2 > c->resource_cap) {
    size_t cap = c->resource_cap ? c->resource_cap * 2 : 64;
    struct resource *r = calloc(cap, sizeof(*r));
    if(!r) {
      fail_oom(c);
      return;
    }
    for(size_t i = 0; i < c->resource_cap; i++) {
      if(!c->resources[i].uri)
        continue;
      size_t j = str_hash(c->resources[i].uri) & (cap - 1);
      while(r[j].uri)
        j = (j + 1) & (cap - 1);
      r[j] = c->resources[i];
    }
    free(c->resources);
    c->resources = r;
    c->resource_cap = cap;
  }
  size_t i = str_hash(uri) & (c->resource_cap - 1);
  while(c->resources[i].uri)
    i = (i + 1) & (c->resource_cap - 1);
  c->resources[i].uri = uri;
  c->resources[i].node = node;
  c->resource_count++;
}

/* Appends a JSON Pointer token (escaped) to prefix. */
static char *pointer_append(struct compiler *c, const char *prefix, const char *token)
{
  size_t plen = strlen(prefix), extra = 1;
  for(const char *t = token; *t; t++)
    extra += (*t == '~' || *t == '/') ? 2 : 1;
  char *out = arena_alloc(c->s, plen + extra + 1);
  if(!out) {
    fail_oom(c);
    return NULL;
  }
  memcpy(out, prefix, plen);
  char *o = out + plen;
  *o++ = '/';
  for(const char *t = token; *t; t++) {
    if(*t == '~') {
      *o++ = '~';
      *o++ = '0';
    } else if(*t == '/') {
      *o++ = '~';
      *o++ = '1';
    } else {
      *o++ = *t;
    }
  }
  *o = '\0';
  return out;
}

static char *pointer_index(struct compiler *c, const char *prefix, size_t i)
{
  char tok[32];
  snprintf(tok, sizeof tok, "%zu", i);
  return pointer_append(c, prefix, tok);
}

/* Keywords whose value is one subschema, an array of them, or a map of them. */
static const char *const SINGLE_KEYWORDS[] = {
    "additionalItems",
    "additionalProperties",
    "contains",
    "propertyNames",
    "if",
    "then",
    "else",
    "not",
    "items",
};
static const char *const ARRAY_KEYWORDS[] = {"items", "allOf", "anyOf", "oneOf"};
static const char *const MAP_KEYWORDS[] = {"definitions", "properties", "patternProperties",
                                           "dependencies"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void scan(struct compiler *c, json_t *n, const char *base, const char *loc, int depth);

static void scan_child(struct compiler *c, json_t *child, const char *base, const char *loc,
                       int depth)
{
  if(json_is_object(child) || json_is_boolean(child))
    scan(c, child, base, loc, depth + 1);
}

/* Records base URI and location of n and of every subschema below it, and
 * registers $id resources and anchors. */
static void scan(struct compiler *c, json_t *n, const char *base, const char *loc, int depth)
{
  if(c->failed)
    return;
  if(depth > MAX_COMPILE_DEPTH) {
    fail(c, "at %s: schema nested more than %d levels deep", *loc ? loc : "/", MAX_COMPILE_DEPTH);
    return;
  }
  if(ptrmap_get(&c->bases, n))
    return;
  if(!json_is_object(n))
    return; /* true and false are jansson singletons: nothing to key on */
  json_t *id = json_object_get(n, "$id");
  if(json_is_string(id) && !json_object_get(n, "$ref")) {
    char *abs = resolve_uri(c, base, json_string_value(id));
    if(!abs)
      return;
    const char *hash = strchr(abs, '#');
    if(hash && hash[1] && hash[1] != '/') {
      resource_add(c, abs, n); /* a plain-name anchor: "uri#name" */
    } else {
      strip_fragment(abs);
      resource_add(c, abs, n);
      base = abs;
    }
  }
  if(ptrmap_put(&c->locs, n, (void *)loc) || ptrmap_put(&c->bases, n, (void *)base)) {
    fail_oom(c);
    return;
  }
  for(size_t k = 0; k < COUNT(SINGLE_KEYWORDS); k++) {
    json_t *v = json_object_get(n, SINGLE_KEYWORDS[k]);
    if(v && (json_is_object(v) || json_is_boolean(v)))
      scan_child(c, v, base, pointer_append(c, loc, SINGLE_KEYWORDS[k]), depth);
  }
  for(size_t k = 0; k < COUNT(ARRAY_KEYWORDS); k++) {
    json_t *v = json_object_get(n, ARRAY_KEYWORDS[k]);
    if(!json_is_array(v))
      continue;
    const char *kloc = pointer_append(c, loc, ARRAY_KEYWORDS[k]);
    for(size_t i = 0; kloc && i < json_array_size(v); i++)
      scan_child(c, json_array_get(v, i), base, pointer_index(c, kloc, i), depth);
  }
  for(size_t k = 0; k < COUNT(MAP_KEYWORDS); k++) {
    json_t *v = json_object_get(n, MAP_KEYWORDS[k]);
    if(!json_is_object(v))
      continue;
    const char *kloc = pointer_append(c, loc, MAP_KEYWORDS[k]);
    const char *key;
    json_t *child;
    json_object_foreach(v, key, child)
    {
      if(!kloc || c->failed)
        break;
      scan_child(c, child, base, pointer_append(c, kloc, key), depth);
    }
  }
}

/* Adds doc (a loaded document named uri, without fragment) to the compile:
 * keeps it alive, checks it against the meta-schema, scans it. */
static int add_document(struct compiler *c, json_t *doc, const char *uri)
{
  if(c->document_count >= MAX_DOCUMENTS) {
    fail(c, "more than %d schema documents referenced", MAX_DOCUMENTS);
    return -1;
  }
  if(json_array_append(c->s->documents, doc)) {
    fail_oom(c);
    return -1;
  }
  c->document_count++;
  if(c->check_meta && c->meta) {
    struct schema_result res;
    if(!schema_validate(c->meta, doc, &res)) {
      const struct schema_error *e = &res.errors[0];
      if(res.count)
        fail(c, "%s%s%s: %s (draft-07 meta-schema at %s)", !strcmp(uri, c->root_doc_uri) ? "" : uri,
             !strcmp(uri, c->root_doc_uri) ? "" : "#", *e->instance_path ? e->instance_path : "/",
             e->message, e->keyword_path);
      else
        fail(c, "%s: not a valid draft-07 schema", uri);
      return -1;
    }
  }
  resource_add(c, uri, doc);
  const char *loc = !strcmp(uri, c->root_doc_uri) ? "" : arena_printf(c->s, "%s#", uri);
  if(!loc) {
    fail_oom(c);
    return -1;
  }
  scan(c, doc, uri, loc, 0);
  return c->failed ? -1 : 0;
}

static char *percent_decode(struct compiler *c, const char *s);

/* True when some '/'-separated segment of path is "..". */
static bool has_dotdot_segment(const char *path)
{
  for(const char *p = path; p; p = strchr(p, '/'), p = p ? p + 1 : NULL)
    if(p[0] == '.' && p[1] == '.' && (p[2] == '/' || p[2] == '\0'))
      return true;
  return false;
}

/* Loads the document named uri (no fragment) from the built-in meta-schema or
 * a mapped directory. Returns 0 or -1 (with the reason set). */
static int load_document(struct compiler *c, const char *uri)
{
  json_error_t jerr;
  json_t *doc = NULL;
  if(!strcmp(uri, META_URI)) {
    doc = schema_metaschema();
    if(!doc) {
      fail_oom(c); /* the embedded text is valid JSON: only memory can fail */
      return -1;
    }
  } else {
    const struct schema_mapping *m = NULL;
    for(size_t i = 0; c->opts && i < c->opts->mapping_count; i++) {
      size_t plen = strlen(c->opts->mappings[i].prefix);
      if(!strncmp(uri, c->opts->mappings[i].prefix, plen)) {
        m = &c->opts->mappings[i];
        break;
      }
    }
    if(!m) {
      fail(c,
           "cannot resolve $ref to \"%s\": no local directory serves it (remote schemas are never "
           "fetched)",
           uri);
      return -1;
    }
    const char *rest = uri + strlen(m->prefix);
    if(*rest == '/') /* a prefix given without its trailing slash */
      rest++;
    char *file = strstr(rest, "%00") || strpbrk(rest, "?\\") ? NULL : percent_decode(c, rest);
    /* Stay inside the mapped directory: no ".." segment, no absolute path. */
    if(!file || !*file || file[0] == '/' || has_dotdot_segment(file)) {
      fail(c, "cannot resolve $ref to \"%s\": path not allowed", uri);
      return -1;
    }
    char path[4096];
    int n = snprintf(path, sizeof path, "%s/%s", m->dir, file);
    if(n < 0 || (size_t)n >= sizeof path) {
      fail(c, "cannot resolve $ref to \"%s\": path too long", uri);
      return -1;
    }
    doc = util_json_load_file(path, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if(!doc) {
      fail(c, "cannot load $ref \"%s\" from %s: %s", uri, path, jerr.text);
      return -1;
    }
  }
  int rc = add_document(c, doc, uri);
  json_decref(doc);
  return rc;
}

/* Decodes %XX escapes of a URI fragment into an arena string. */
static char *percent_decode(struct compiler *c, const char *s)
{
  size_t len = strlen(s);
  char *out = arena_alloc(c->s, len + 1), *o = out;
  if(!out) {
    fail_oom(c);
    return NULL;
  }
  for(size_t i = 0; i < len; i++) {
    if(s[i] == '%' && i + 2 < len && util_hexval(s[i + 1]) >= 0 && util_hexval(s[i + 2]) >= 0) {
      *o++ = (char)(util_hexval(s[i + 1]) * 16 + util_hexval(s[i + 2]));
      i += 2;
    } else {
      *o++ = s[i];
    }
  }
  *o = '\0';
  return out;
}

/* Follows the JSON Pointer ptr from node. On success returns the target and
 * sets *base to the base URI in effect there. */
static json_t *pointer_walk(struct compiler *c, json_t *node, const char *ptr, const char **base)
{
  const char *b = ptrmap_get(&c->bases, node);
  if(b)
    *base = b;
  while(*ptr) {
    if(*ptr != '/')
      return NULL;
    ptr++;
    const char *end = strchr(ptr, '/');
    size_t len = end ? (size_t)(end - ptr) : strlen(ptr);
    char tok[1024];
    size_t t = 0;
    for(size_t i = 0; i < len; i++) {
      if(t + 1 >= sizeof tok)
        return NULL;
      if(ptr[i] == '~' && i + 1 < len && (ptr[i + 1] == '0' || ptr[i + 1] == '1')) {
        tok[t++] = ptr[i + 1] == '0' ? '~' : '/';
        i++;
      } else if(ptr[i] == '~') {
        return NULL;
      } else {
        tok[t++] = ptr[i];
      }
    }
    tok[t] = '\0';
    if(json_is_object(node)) {
      node = json_object_get(node, tok);
    } else if(json_is_array(node)) {
      char *e;
      errno = 0;
      unsigned long idx = strtoul(tok, &e, 10);
      if(!t || *e || errno || (t > 1 && tok[0] == '0'))
        return NULL;
      node = json_array_get(node, idx);
    } else {
      return NULL;
    }
    if(!node)
      return NULL;
    b = ptrmap_get(&c->bases, node);
    if(b)
      *base = b;
    ptr += len;
  }
  return node;
}

static struct node *compile_node(struct compiler *c, json_t *n, const char *base, const char *loc);
static long find_property(const struct node *k, const char *key);

/* Resolves a $ref found at a subschema whose base is base. */
static struct node *compile_ref(struct compiler *c, const char *base, const char *ref)
{
  char *abs = resolve_uri(c, base, ref);
  if(!abs)
    return NULL;
  char *hash = strchr(abs, '#');
  const char *fragment = "";
  if(hash) {
    *hash = '\0';
    fragment = hash + 1;
  }
  json_t *target = resource_find(c, abs);
  if(!target && *fragment && *fragment != '/') {
    /* "uri#name" may name a subschema of an already loaded document (an
     * embedded "$id": "http://x/bar#foo") although "uri" names none. */
    char *anchor = arena_printf(c->s, "%s#%s", abs, fragment);
    if(!anchor) {
      fail_oom(c);
      return NULL;
    }
    json_t *named = resource_find(c, anchor);
    if(named) {
      const char *b = ptrmap_get(&c->bases, named);
      const char *nloc = ptrmap_get(&c->locs, named);
      return compile_node(c, named, b ? b : abs, nloc ? nloc : anchor);
    }
  }
  if(!target) {
    if(load_document(c, abs))
      return NULL;
    target = resource_find(c, abs);
    if(!target) {
      fail(c, "cannot resolve $ref \"%s\"", ref);
      return NULL;
    }
  }
  const char *tbase = abs;
  if(*fragment == '/') {
    char *ptr = percent_decode(c, fragment);
    if(!ptr)
      return NULL;
    target = pointer_walk(c, target, ptr, &tbase);
  } else if(*fragment) {
    char *anchor = arena_printf(c->s, "%s#%s", abs, fragment);
    if(!anchor) {
      fail_oom(c);
      return NULL;
    }
    target = resource_find(c, anchor);
    const char *b = target ? ptrmap_get(&c->bases, target) : NULL;
    if(b)
      tbase = b;
  } else {
    const char *b = ptrmap_get(&c->bases, target);
    if(b)
      tbase = b;
  }
  if(!target || !(json_is_object(target) || json_is_boolean(target))) {
    fail(c, "$ref \"%s\" does not point to a schema", ref);
    return NULL;
  }
  const char *tloc = json_is_object(target) ? ptrmap_get(&c->locs, target) : NULL;
  if(!tloc) {
    tloc = !strcmp(abs, c->root_doc_uri) && (!*fragment || *fragment == '/')
               ? arena_strndup(c->s, fragment, strlen(fragment))
               : arena_printf(c->s, "%s#%s", abs, fragment);
    if(!tloc) {
      fail_oom(c);
      return NULL;
    }
  }
  return compile_node(c, target, tbase, tloc);
}

static bool is_nonneg_int(const json_t *v)
{
  if(json_is_integer(v))
    return json_integer_value(v) >= 0;
  if(json_is_real(v)) {
    double d = json_real_value(v);
    return d >= 0 && d == floor(d);
  }
  return false;
}

static long long get_count(const json_t *n, const char *key)
{
  const json_t *v = json_object_get(n, key);
  if(!v || !is_nonneg_int(v))
    return -1;
  if(json_is_integer(v))
    return (long long)json_integer_value(v);
  /* 1e19 is a valid count no string or array can reach: clamp, don't drop. */
  return json_real_value(v) >= 9.2e18 ? LLONG_MAX : (long long)json_real_value(v);
}

static const json_t *get_number(const json_t *n, const char *key)
{
  const json_t *v = json_object_get(n, key);
  return json_is_number(v) ? v : NULL;
}

static unsigned type_bit(const char *name)
{
  static const struct {
    const char *name;
    unsigned bit;
  } TYPES[] = {
      {"null", T_NULL},     {"boolean", T_BOOLEAN}, {"object", T_OBJECT},   {"array", T_ARRAY},
      {"number", T_NUMBER}, {"string", T_STRING},   {"integer", T_INTEGER},
  };
  for(size_t i = 0; i < COUNT(TYPES); i++)
    if(!strcmp(TYPES[i].name, name))
      return TYPES[i].bit;
  return 0;
}

static struct node *child(struct compiler *c, json_t *parent, const char *key, const char *base,
                          const char *loc)
{
  json_t *v = json_object_get(parent, key);
  if(!v || !(json_is_object(v) || json_is_boolean(v)))
    return NULL;
  return compile_node(c, v, base, pointer_append(c, loc, key));
}

static void child_list(struct compiler *c, json_t *parent, const char *key, const char *base,
                       const char *loc, struct node_list *out)
{
  json_t *v = json_object_get(parent, key);
  if(!json_is_array(v) || !json_array_size(v))
    return;
  const char *kloc = pointer_append(c, loc, key);
  out->v = arena_alloc(c->s, json_array_size(v) * sizeof(*out->v));
  if(!out->v || !kloc) {
    fail_oom(c);
    return;
  }
  for(size_t i = 0; i < json_array_size(v) && !c->failed; i++) {
    json_t *item = json_array_get(v, i);
    if(!json_is_object(item) && !json_is_boolean(item))
      continue;
    struct node *k = compile_node(c, item, base, pointer_index(c, kloc, i));
    if(k)
      out->v[out->n++] = k;
  }
}

static int prop_cmp(const void *a, const void *b)
{
  return strcmp(((const struct prop *)a)->key, ((const struct prop *)b)->key);
}

/* Copies an array of strings into the arena. */
static const char **string_list(struct compiler *c, const json_t *arr, size_t *count)
{
  *count = 0;
  if(!json_is_array(arr) || !json_array_size(arr))
    return NULL;
  const char **out = arena_alloc(c->s, json_array_size(arr) * sizeof(*out));
  if(!out) {
    fail_oom(c);
    return NULL;
  }
  for(size_t i = 0; i < json_array_size(arr); i++) {
    const json_t *v = json_array_get(arr, i);
    if(json_is_string(v))
      out[(*count)++] = json_string_value(v);
  }
  return out;
}

static struct schema_regex *add_regex(struct compiler *c, const char *pattern, const char *loc)
{
  char msg[256];
  struct schema_regex *re = schema_regex_compile(pattern, msg, sizeof msg);
  if(!re) {
    fail(c, "at %s: %s", *loc ? loc : "/", msg);
    return NULL;
  }
  struct regex_list *l = &c->s->regexes;
  if(l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 8;
    struct schema_regex **v = realloc(l->v, cap * sizeof(*v));
    if(!v) {
      schema_regex_free(re);
      fail_oom(c);
      return NULL;
    }
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = re;
  return re;
}

static void compile_object_keywords(struct compiler *c, struct node *k, json_t *n, const char *base,
                                    const char *loc)
{
  json_t *v;

  v = json_object_get(n, "type");
  if(json_is_string(v)) {
    k->types = type_bit(json_string_value(v));
  } else if(json_is_array(v)) {
    for(size_t i = 0; i < json_array_size(v); i++)
      if(json_is_string(json_array_get(v, i)))
        k->types |= type_bit(json_string_value(json_array_get(v, i)));
  }
  if(k->types & T_NUMBER)
    k->types |= T_INTEGER;
  v = json_object_get(n, "enum");
  if(json_is_array(v))
    k->enum_values = v;
  v = json_object_get(n, "const");
  if(v) {
    k->const_value = v;
    k->has_const = true;
  }

  k->multiple_of = get_number(n, "multipleOf");
  k->maximum = get_number(n, "maximum");
  k->exclusive_maximum = get_number(n, "exclusiveMaximum");
  k->minimum = get_number(n, "minimum");
  k->exclusive_minimum = get_number(n, "exclusiveMinimum");

  k->max_length = get_count(n, "maxLength");
  k->min_length = get_count(n, "minLength");
  v = json_object_get(n, "pattern");
  if(json_is_string(v))
    k->pattern = add_regex(c, json_string_value(v), pointer_append(c, loc, "pattern"));
  v = json_object_get(n, "format");
  if(json_is_string(v) && !(c->opts && c->opts->formats_off))
    k->format = schema_format_lookup(json_string_value(v));

  v = json_object_get(n, "items");
  if(json_is_array(v)) {
    k->items_is_tuple = true;
    child_list(c, n, "items", base, loc, &k->items_tuple);
    k->additional_items = child(c, n, "additionalItems", base, loc);
  } else {
    k->items = child(c, n, "items", base, loc);
  }
  k->max_items = get_count(n, "maxItems");
  k->min_items = get_count(n, "minItems");
  k->unique_items = json_is_true(json_object_get(n, "uniqueItems"));
  k->contains = child(c, n, "contains", base, loc);

  k->max_properties = get_count(n, "maxProperties");
  k->min_properties = get_count(n, "minProperties");
  k->required = string_list(c, json_object_get(n, "required"), &k->required_count);

  v = json_object_get(n, "properties");
  if(json_is_object(v) && json_object_size(v)) {
    const char *ploc = pointer_append(c, loc, "properties");
    k->properties = arena_alloc(c->s, json_object_size(v) * sizeof(*k->properties));
    if(!k->properties || !ploc) {
      fail_oom(c);
      return;
    }
    const char *key;
    json_t *sub;
    json_object_foreach(v, key, sub)
    {
      if(c->failed)
        return;
      if(!json_is_object(sub) && !json_is_boolean(sub))
        continue;
      struct prop *p = &k->properties[k->property_count];
      p->key = key;
      p->schema = compile_node(c, sub, base, pointer_append(c, ploc, key));
      if(p->schema)
        k->property_count++;
    }
    qsort(k->properties, k->property_count, sizeof(*k->properties), prop_cmp);
  }
  k->required_by_bits = k->required_count > 0;
  for(size_t i = 0; i < k->required_count && k->required_by_bits; i++) {
    long pi = find_property(k, k->required[i]);
    if(pi < 0 || pi >= 64)
      k->required_by_bits = false;
    else
      k->required_bits |= 1ULL << pi;
  }
  v = json_object_get(n, "patternProperties");
  if(json_is_object(v) && json_object_size(v)) {
    const char *ploc = pointer_append(c, loc, "patternProperties");
    k->pattern_properties = arena_alloc(c->s, json_object_size(v) * sizeof(*k->pattern_properties));
    if(!k->pattern_properties || !ploc) {
      fail_oom(c);
      return;
    }
    const char *key;
    json_t *sub;
    json_object_foreach(v, key, sub)
    {
      if(c->failed)
        return;
      if(!json_is_object(sub) && !json_is_boolean(sub))
        continue;
      const char *sloc = pointer_append(c, ploc, key);
      struct pattern_prop *p = &k->pattern_properties[k->pattern_property_count];
      p->re = add_regex(c, key, sloc ? sloc : "");
      p->schema = compile_node(c, sub, base, sloc);
      if(p->re && p->schema)
        k->pattern_property_count++;
    }
  }
  k->additional_properties = child(c, n, "additionalProperties", base, loc);
  v = json_object_get(n, "dependencies");
  if(json_is_object(v) && json_object_size(v)) {
    const char *dloc = pointer_append(c, loc, "dependencies");
    k->dependencies = arena_alloc(c->s, json_object_size(v) * sizeof(*k->dependencies));
    if(!k->dependencies || !dloc) {
      fail_oom(c);
      return;
    }
    const char *key;
    json_t *dep;
    json_object_foreach(v, key, dep)
    {
      if(c->failed)
        return;
      struct dep *d = &k->dependencies[k->dependency_count];
      d->key = key;
      if(json_is_array(dep)) {
        d->names = string_list(c, dep, &d->name_count);
      } else if(json_is_object(dep) || json_is_boolean(dep)) {
        d->schema = compile_node(c, dep, base, pointer_append(c, dloc, key));
        if(!d->schema)
          continue;
      } else {
        continue;
      }
      k->dependency_count++;
    }
  }
  k->property_names = child(c, n, "propertyNames", base, loc);

  if(json_object_get(n, "if")) {
    k->if_ = child(c, n, "if", base, loc);
    k->then_ = child(c, n, "then", base, loc);
    k->else_ = child(c, n, "else", base, loc);
  }
  child_list(c, n, "allOf", base, loc, &k->all_of);
  child_list(c, n, "anyOf", base, loc, &k->any_of);
  child_list(c, n, "oneOf", base, loc, &k->one_of);
  k->not_ = child(c, n, "not", base, loc);
}

/* Compiles the subschema n (an object or a boolean). Memoised by n. */
static struct node *compile_node(struct compiler *c, json_t *n, const char *base, const char *loc)
{
  if(c->failed || !loc)
    return NULL;
  /* Object schemas are memoised (that is what ends $ref cycles); true and
   * false are shared jansson singletons, so each use gets its own node. */
  struct node *k = json_is_object(n) ? ptrmap_get(&c->nodes, n) : NULL;
  if(k)
    return k;
  if(c->depth >= MAX_COMPILE_DEPTH) {
    fail(c, "at %s: schema nested more than %d levels deep", *loc ? loc : "/", MAX_COMPILE_DEPTH);
    return NULL;
  }
  k = arena_alloc(c->s, sizeof(*k));
  if(!k || (json_is_object(n) && ptrmap_put(&c->nodes, n, k))) {
    fail_oom(c);
    return NULL;
  }
  const char *known = ptrmap_get(&c->bases, n);
  if(known)
    base = known;
  const char *kloc = ptrmap_get(&c->locs, n);
  k->loc = kloc ? kloc : loc;
  k->max_length = k->min_length = k->max_items = k->min_items = -1;
  k->max_properties = k->min_properties = -1;
  if(json_is_boolean(n)) {
    k->boolean = json_is_true(n) ? 1 : 0;
    return k;
  }
  k->boolean = -1;
  c->depth++;
  json_t *ref = json_object_get(n, "$ref");
  if(json_is_string(ref)) {
    k->ref = compile_ref(c, base, json_string_value(ref));
    if(!k->ref && !c->failed)
      fail(c, "cannot resolve $ref \"%s\"", json_string_value(ref));
  } else {
    compile_object_keywords(c, k, n, base, k->loc);
    k->string_only = !k->enum_values && !k->has_const && !k->all_of.n && !k->any_of.n &&
                     !k->one_of.n && !k->not_ && !k->if_ && (!k->types || (k->types & T_STRING));
  }
  c->depth--;
  return c->failed ? NULL : k;
}

/* Fails when a chain of $refs loops back onto itself without any keyword in
 * between ({"$ref": "#"} at the root): such a schema can never decide. */
static void check_ref_cycles(struct compiler *c, struct node *start)
{
  struct node *slow = start, *fast = start;
  while(fast && fast->ref && fast->ref->ref) {
    slow = slow->ref;
    fast = fast->ref->ref;
    if(slow == fast) {
      fail(c, "at %s: $ref loops back onto itself", *start->loc ? start->loc : "/");
      return;
    }
  }
}

static void check_all_ref_cycles(struct compiler *c)
{
  for(size_t i = 0; i < c->nodes.cap && !c->failed; i++)
    if(c->nodes.keys[i])
      check_ref_cycles(c, c->nodes.vals[i]);
}

static struct schema *compile(json_t *doc, const struct schema_options *opts, bool check_meta,
                              char *err, size_t errlen)
{
  struct compiler c = {.opts = opts, .check_meta = check_meta, .err = err, .errlen = errlen};
  struct schema *s = calloc(1, sizeof(*s));
  if(err && errlen)
    err[0] = '\0';
  if(!s || !(s->documents = json_array())) {
    free(s);
    fail_oom(&c);
    return NULL;
  }
  c.s = s;
  if(!json_is_object(doc) && !json_is_boolean(doc)) {
    fail(&c, "a schema must be a JSON object or a boolean");
    goto out;
  }
  if(check_meta) {
    json_t *meta = schema_metaschema();
    c.meta = meta ? compile(meta, NULL, false, err, errlen) : NULL;
    json_decref(meta);
    if(!c.meta) {
      c.failed = true;
      goto out;
    }
  }
  const char *base = opts && opts->base_uri ? opts->base_uri : DEFAULT_BASE;
  json_t *id = json_is_object(doc) ? json_object_get(doc, "$id") : NULL;
  char *root_uri = NULL;
  if(json_is_string(id) && !json_object_get(doc, "$ref"))
    root_uri = resolve_uri(&c, base, json_string_value(id));
  else
    root_uri = arena_strndup(s, base, strlen(base));
  if(!root_uri) {
    fail_oom(&c);
    goto out;
  }
  strip_fragment(root_uri);
  c.root_doc_uri = root_uri;
  if(add_document(&c, doc, root_uri))
    goto out;
  s->root = compile_node(&c, doc, root_uri, "");
  if(!c.failed)
    check_all_ref_cycles(&c);
out:
  if(c.meta)
    schema_free(c.meta);
  free(c.resources);
  ptrmap_free(&c.bases);
  ptrmap_free(&c.locs);
  ptrmap_free(&c.nodes);
  if(c.failed || !s->root) {
    if(!c.failed)
      fail(&c, "cannot compile schema");
    schema_free(s);
    return NULL;
  }
  return s;
}

/* Compiles doc with the directory dir (absolute, ending in '/') serving its
 * relative $refs besides opts' mappings; base_file (absolute, or NULL for
 * the directory itself) is its base URI. Both become percent-encoded file:
 * URIs (a path may hold spaces, '%' or '#'). */
static struct schema *compile_in_dir(json_t *doc, const struct schema_options *opts,
                                     const char *dir, const char *base_file, char *err,
                                     size_t errlen)
{
  struct schema *s = NULL;
  size_t n = opts ? opts->mapping_count : 0;
  const char *b = base_file ? base_file : dir;
  struct schema_mapping *maps = calloc(n + 1, sizeof(*maps));
  char *base = malloc(8 + 3 * strlen(b) + 1), *prefix = malloc(8 + 3 * strlen(dir) + 1);
  if(!maps || !base || !prefix || uriUnixFilenameToUriStringA(b, base) ||
     uriUnixFilenameToUriStringA(dir, prefix)) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  for(size_t i = 0; i < n; i++)
    maps[i] = opts->mappings[i];
  maps[n].prefix = prefix;
  maps[n].dir = dir;
  struct schema_options o = {.base_uri = base,
                             .mappings = maps,
                             .mapping_count = n + 1,
                             .formats_off = opts && opts->formats_off};
  s = compile(doc, &o, true, err, errlen);
out:
  free(base);
  free(prefix);
  free(maps);
  return s;
}

struct schema *schema_compile(json_t *doc, const struct schema_options *opts, char *err,
                              size_t errlen)
{
  if(!opts || !opts->base_dir || opts->base_uri)
    return compile(doc, opts, true, err, errlen);
  char *dir = realpath(opts->base_dir, NULL), *slashed = NULL;
  if(!dir) {
    snprintf(err, errlen, "%s: %s", opts->base_dir, strerror(errno));
    return NULL;
  }
  struct schema *s = NULL;
  if(asprintf(&slashed, "%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/") < 0)
    snprintf(err, errlen, "out of memory");
  else
    s = compile_in_dir(doc, opts, slashed, NULL, err, errlen);
  free(slashed);
  free(dir);
  return s;
}

struct schema *schema_compile_file(const char *path, const struct schema_options *opts, char *err,
                                   size_t errlen)
{
  json_error_t jerr;
  struct schema *s = NULL;
  char *abs = realpath(path, NULL), *dir = NULL;
  if(!abs) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return NULL;
  }
  json_t *doc = util_json_load_file(abs, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
  if(!doc) {
    snprintf(err, errlen, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
    goto out;
  }
  /* The file's own directory serves its relative $refs. */
  dir = strdup(abs);
  char *slash = dir ? strrchr(dir, '/') : NULL;
  if(!slash) {
    snprintf(err, errlen, "out of memory");
    goto out;
  }
  slash[1] = '\0';
  char msg[512];
  s = compile_in_dir(doc, opts, dir, abs, msg, sizeof msg);
  if(!s)
    snprintf(err, errlen, "%s: %s", path, msg);
out:
  free(dir);
  json_decref(doc);
  free(abs);
  return s;
}

void schema_free(struct schema *s)
{
  if(!s)
    return;
  for(size_t i = 0; i < s->regexes.n; i++)
    schema_regex_free(s->regexes.v[i]);
  free(s->regexes.v);
  json_decref(s->documents);
  while(s->chunks) {
    struct chunk *next = s->chunks->next;
    free(s->chunks);
    s->chunks = next;
  }
  free(s);
}

json_t *schema_metaschema(void)
{
  return json_loadb(schema_meta_draft07, schema_meta_draft07_len, 0, NULL);
}

/* Work left for one schema_validate call, shared by its quiet sub-checks:
 * anyOf/oneOf/if try branches that may recurse, so depth alone does not bound
 * the work ({"anyOf":[{"$ref":"#"},{"$ref":"#"}]} has 2^depth paths). */
struct budget {
  unsigned long steps;
  bool exhausted;
  bool regex_gave_up;
  bool regex_slow;
  unsigned regex_calls;
  struct timespec regex_t0; /* thread CPU time at the 16th match */
};

/* Spends one step. False when the budget is (or now becomes) exhausted. */
static bool budget_spend(struct budget *b)
{
  if(b->exhausted || ++b->steps > SCHEMA_MAX_STEPS) {
    b->exhausted = true;
    return false;
  }
  return true;
}

/* ---- JSON equality and hashing as JSON Schema sees them ---- */

static bool num_is_integral(const json_t *v, long long *out)
{
  if(json_is_integer(v)) {
    *out = json_integer_value(v);
    return true;
  }
  double d = json_real_value(v);
  if(d == floor(d) && d >= -9223372036854775808.0 && d < 9223372036854775808.0) {
    *out = (long long)d;
    return true;
  }
  return false;
}

/* Compares two JSON numbers: <0, 0, >0. Exact for two integers. */
/* Compares an integer with a real exactly (no rounding of i to a double). */
static int int_real_cmp(json_int_t i, double r)
{
  if(r >= 9223372036854775808.0) /* 2^63: above every integer */
    return -1;
  if(r < -9223372036854775808.0)
    return 1;
  double fl = floor(r); /* in [-2^63, 2^63): exact as an integer */
  json_int_t f = (json_int_t)fl;
  if(i != f)
    return i < f ? -1 : 1;
  return r > fl ? -1 : 0;
}

static int num_cmp(const json_t *a, const json_t *b)
{
  if(json_is_integer(a) && json_is_integer(b)) {
    json_int_t x = json_integer_value(a), y = json_integer_value(b);
    return x < y ? -1 : x > y;
  }
  if(json_is_integer(a))
    return int_real_cmp(json_integer_value(a), json_real_value(b));
  if(json_is_integer(b))
    return -int_real_cmp(json_integer_value(b), json_real_value(a));
  double x = json_real_value(a), y = json_real_value(b);
  return x < y ? -1 : x > y;
}

bool schema_json_equal(const json_t *a, const json_t *b)
{
  if(json_is_number(a) && json_is_number(b))
    return num_cmp(a, b) == 0;
  if(json_typeof(a) != json_typeof(b))
    return false;
  switch(json_typeof(a)) {
  case JSON_STRING:
    return json_string_length(a) == json_string_length(b) &&
           !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
  case JSON_ARRAY:
    if(json_array_size(a) != json_array_size(b))
      return false;
    for(size_t i = 0; i < json_array_size(a); i++)
      if(!schema_json_equal(json_array_get(a, i), json_array_get(b, i)))
        return false;
    return true;
  case JSON_OBJECT: {
    if(json_object_size(a) != json_object_size(b))
      return false;
    const char *key;
    const json_t *v;
    json_object_foreach((json_t *)a, key, v)
    {
      const json_t *w = json_object_get(b, key);
      if(!w || !schema_json_equal(v, w))
        return false;
    }
    return true;
  }
  default: return true; /* true, false, null: same type is equal */
  }
}

static uint64_t mix(uint64_t h, uint64_t v)
{
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h;
}

static uint64_t bytes_hash(const char *s, size_t len)
{
  uint64_t h = 1469598103934665603ULL;
  for(size_t i = 0; i < len; i++) {
    h ^= (unsigned char)s[i];
    h *= 1099511628211ULL;
  }
  return h;
}

/* A hash consistent with schema_json_equal (1 and 1.0 hash alike; object key
 * order does not matter). Depth-bounded by jansson's parser. */
static uint64_t json_hash(const json_t *v)
{
  switch(json_typeof(v)) {
  case JSON_INTEGER:
  case JSON_REAL: {
    /* Whole numbers that fit in 64 bits by their integer value (1 and 1.0
     * alike; hashing them as doubles made 2^62 + k all collide), others by
     * their bits (-0.0 is 0.0). Equal numbers always hash alike. */
    long long i;
    if(num_is_integral(v, &i))
      return mix(1, (uint64_t)i);
    double d = json_real_value(v);
    if(d == 0)
      d = 0;
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return mix(2, bits);
  }
  case JSON_STRING: return mix(3, bytes_hash(json_string_value(v), json_string_length(v)));
  case JSON_ARRAY: {
    uint64_t h = 4;
    for(size_t i = 0; i < json_array_size(v); i++)
      h = mix(h, json_hash(json_array_get(v, i)));
    return h;
  }
  case JSON_OBJECT: {
    uint64_t h = 0;
    const char *key;
    const json_t *x;
    json_object_foreach((json_t *)v, key, x) h += mix(bytes_hash(key, strlen(key)), json_hash(x));
    return mix(5, h);
  }
  case JSON_TRUE: return 6;
  case JSON_FALSE: return 7;
  default: return 8;
  }
}

struct hashed {
  uint64_t h;
  size_t i;
};

static int hashed_cmp(const void *a, const void *b)
{
  uint64_t x = ((const struct hashed *)a)->h, y = ((const struct hashed *)b)->h;
  return x < y ? -1 : x > y;
}

/* Returns 1 when all items are distinct, 0 when two are equal (their indexes
 * in dup_a and dup_b), -1 when out of memory. O(n log n). */
static int unique_items(const json_t *arr, size_t *dup_a, size_t *dup_b, struct budget *b)
{
  size_t n = json_array_size(arr);
  if(n < 2)
    return 1;
  if(n <= 8) {
    for(size_t i = 0; i < n; i++)
      for(size_t j = i + 1; j < n; j++)
        if(schema_json_equal(json_array_get(arr, i), json_array_get(arr, j))) {
          *dup_a = i;
          *dup_b = j;
          return 0;
        }
    return 1;
  }
  struct hashed *hs = malloc(n * sizeof(*hs));
  if(!hs)
    return -1;
  for(size_t i = 0; i < n; i++) {
    hs[i].h = json_hash(json_array_get(arr, i));
    hs[i].i = i;
  }
  qsort(hs, n, sizeof(*hs), hashed_cmp);
  int rc = 1;
  for(size_t i = 0; i < n && rc; i++)
    for(size_t j = i + 1; j < n && hs[j].h == hs[i].h; j++) {
      if(!budget_spend(b)) { /* colliding hashes cost a compare each */
        rc = -1;
        break;
      }
      if(schema_json_equal(json_array_get(arr, hs[i].i), json_array_get(arr, hs[j].i))) {
        *dup_a = hs[i].i < hs[j].i ? hs[i].i : hs[j].i;
        *dup_b = hs[i].i < hs[j].i ? hs[j].i : hs[i].i;
        rc = 0;
        break;
      }
    }
  free(hs);
  return rc;
}

/* ---- validation ---- */

/* The instance path of report mode (quiet checks carry none). */
struct ipath {
  char buf[SCHEMA_PATH_MAX];
  size_t len;  /* bytes of buf in use */
  size_t want; /* bytes the full path would need (> len when cut) */
};

struct vctx {
  struct budget *budget;
  struct schema_result *res; /* NULL: quiet, stop at the first failure */
  struct ipath *path;        /* NULL when quiet */
  int depth;
};

static bool quiet(const struct vctx *v)
{
  return !v->res;
}

/* Drops, in place, every byte of s that is not part of a well-formed UTF-8
 * sequence (a character cut in two by a length limit, mostly). */
static void utf8_repair(char *s)
{
  unsigned char *r = (unsigned char *)s, *w = r;
  while(*r) {
    unsigned char b = *r;
    size_t n = b < 0x80             ? 1
               : (b & 0xe0) == 0xc0 ? 2
               : (b & 0xf0) == 0xe0 ? 3
               : (b & 0xf8) == 0xf0 ? 4
                                    : 0;
    size_t i = 1;
    while(n > 1 && i < n && (r[i] & 0xc0) == 0x80)
      i++;
    if(n == 0 || i < n) { /* a stray or cut sequence: drop its bytes */
      r += n == 0 ? 1 : i;
      continue;
    }
    for(i = 0; i < n; i++)
      *w++ = *r++;
  }
  *w = '\0';
}

/* Copies the JSON Pointer src into out (size outlen). When it does not fit,
 * or when cut is set, it is cut at a token boundary and "/..." appended, so
 * the result stays a well-formed pointer (no half "~0" escape). */
static void pointer_cut(char *out, size_t outlen, const char *src, bool cut)
{
  size_t len = strlen(src);
  if(!cut && len < outlen) {
    memcpy(out, src, len + 1);
    return;
  }
  size_t keep = len < outlen - 5 ? len : outlen - 5; /* room for "/..." */
  while(keep > 0 && src[keep] != '/' && keep < len)
    keep--;
  memcpy(out, src, keep);
  memcpy(out + keep, "/...", 5);
}

/* Records one error at the current instance path; false when the error list
 * is full (validation may stop). */
static void report(struct vctx *v, const struct node *k, const char *keyword, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void report(struct vctx *v, const struct node *k, const char *keyword, const char *fmt, ...)
{
  struct schema_result *r = v->res;
  if(!r)
    return;
  if(r->count == SCHEMA_MAX_ERRORS) {
    r->truncated = true;
    return;
  }
  struct schema_error *e = &r->errors[r->count++];
  if(v->path->want > v->path->len)
    pointer_cut(e->instance_path, sizeof e->instance_path, v->path->buf, true);
  else
    snprintf(e->instance_path, sizeof e->instance_path, "%s", v->path->buf);
  char kw[SCHEMA_PATH_MAX * 2];
  snprintf(kw, sizeof kw, "%s%s%s", k->loc, *keyword ? "/" : "", keyword);
  pointer_cut(e->keyword_path, sizeof e->keyword_path, kw, false);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->message, sizeof e->message, fmt, ap);
  va_end(ap);
  /* Cuts (%.100s, full buffers) may split a character; the gateway puts
   * these strings into JSON, which must be valid UTF-8. */
  utf8_repair(e->instance_path);
  utf8_repair(e->keyword_path);
  utf8_repair(e->message);
}

static bool full(const struct vctx *v)
{
  return v->res && v->res->truncated;
}

/* Appends one escaped JSON Pointer token; returns the length to restore. */
static size_t path_push(struct vctx *v, const char *token, size_t len)
{
  if(quiet(v))
    return 0;
  size_t saved = v->path->want;
  size_t need = 1;
  for(size_t i = 0; i < len; i++)
    need += (token[i] == '~' || token[i] == '/') ? 2 : 1;
  if(v->path->want == v->path->len && v->path->len + need < sizeof v->path->buf) {
    char *o = v->path->buf + v->path->len;
    *o++ = '/';
    for(size_t i = 0; i < len; i++) {
      if(token[i] == '~' || token[i] == '/') {
        *o++ = '~';
        *o++ = token[i] == '~' ? '0' : '1';
      } else {
        *o++ = token[i];
      }
    }
    *o = '\0';
    v->path->len += need;
  }
  v->path->want += need;
  return saved;
}

static size_t path_push_index(struct vctx *v, size_t i)
{
  if(quiet(v))
    return 0;
  char tok[32];
  int n = snprintf(tok, sizeof tok, "%zu", i);
  return path_push(v, tok, (size_t)n);
}

static void path_pop(struct vctx *v, size_t saved)
{
  if(quiet(v))
    return;
  v->path->want = saved;
  if(v->path->len > saved) {
    v->path->len = saved;
    v->path->buf[saved] = '\0';
  }
}

static bool validate(const struct node *k, const json_t *inst, struct vctx *v);

/* Validates quietly (for anyOf, oneOf, not, if, contains): no errors recorded. */
static bool test(const struct node *k, const json_t *inst, struct vctx *v)
{
  struct vctx q = {.budget = v->budget, .res = NULL, .depth = v->depth};
  return validate(k, inst, &q);
}

static unsigned instance_type(const json_t *inst)
{
  switch(json_typeof(inst)) {
  case JSON_OBJECT: return T_OBJECT;
  case JSON_ARRAY: return T_ARRAY;
  case JSON_STRING: return T_STRING;
  case JSON_INTEGER: return T_INTEGER | T_NUMBER;
  case JSON_REAL: {
    long long i;
    return num_is_integral(inst, &i) || (isfinite(json_real_value(inst)) &&
                                         json_real_value(inst) == floor(json_real_value(inst)))
               ? (T_INTEGER | T_NUMBER)
               : T_NUMBER;
  }
  case JSON_TRUE:
  case JSON_FALSE: return T_BOOLEAN;
  default: return T_NULL;
  }
}

static const char *type_name(const json_t *inst)
{
  switch(json_typeof(inst)) {
  case JSON_OBJECT: return "object";
  case JSON_ARRAY: return "array";
  case JSON_STRING: return "string";
  case JSON_INTEGER: return "integer";
  case JSON_REAL: return "number";
  case JSON_TRUE:
  case JSON_FALSE: return "boolean";
  default: return "null";
  }
}

static void types_text(unsigned types, char *buf, size_t len)
{
  static const char *const NAMES[] = {"null",   "boolean", "object", "array",
                                      "number", "string",  "integer"};
  size_t used = 0;
  buf[0] = '\0';
  for(unsigned i = 0; i < COUNT(NAMES); i++) {
    if(!(types & (1u << i)))
      continue;
    if((1u << i) == T_INTEGER && (types & T_NUMBER))
      continue;
    int n = snprintf(buf + used, len - used, "%s%s", used ? " or " : "", NAMES[i]);
    if(n < 0 || (size_t)n >= len - used)
      return;
    used += (size_t)n;
  }
}

static void number_text(const json_t *n, char *buf, size_t len)
{
  if(json_is_integer(n))
    snprintf(buf, len, "%" JSON_INTEGER_FORMAT, json_integer_value(n));
  else
    snprintf(buf, len, "%.17g", json_real_value(n));
}

static bool multiple_of(const json_t *inst, const json_t *m)
{
  long long x, d;
  /* Whole numbers (1 and 1.0 alike) that fit in 64 bits: exact. */
  if(num_is_integral(inst, &x) && num_is_integral(m, &d))
    return d > 0 && (d == 1 || x % d == 0);
  double xf = json_number_value(inst), df = json_number_value(m);
  if(!(df > 0))
    return false;
  double q = xf / df;
  if(!isfinite(q))
    return false;
  /* The quotient's own rounding error grows with it (a few ulps); a fixed
   * 1e-9 would refuse true multiples, a relative 1e-9 accepted anything
   * past 5e8. */
  return fabs(q - nearbyint(q)) <= fmax(1e-9, 8 * DBL_EPSILON * fabs(q));
}

/* Counts code points of valid UTF-8. */
static size_t utf8_length(const char *s, size_t len)
{
  size_t n = 0;
  for(size_t i = 0; i < len; i++)
    n += ((unsigned char)s[i] & 0xC0) != 0x80;
  return n;
}

static bool validate_number(const struct node *k, const json_t *inst, struct vctx *v)
{
  bool ok = true;
  char a[40], b[40];
  if(k->multiple_of && !multiple_of(inst, k->multiple_of)) {
    ok = false;
    if(quiet(v))
      return false;
    number_text(inst, a, sizeof a);
    number_text(k->multiple_of, b, sizeof b);
    report(v, k, "multipleOf", "%s is not a multiple of %s", a, b);
  }
  static const struct {
    const char *keyword, *text;
    int bad_sign; /* the comparison result that fails */
    bool or_equal;
  } LIMITS[] = {
      {"maximum", "greater than the maximum", 1, false},
      {"exclusiveMaximum", "not less than the exclusive maximum", 1, true},
      {"minimum", "less than the minimum", -1, false},
      {"exclusiveMinimum", "not greater than the exclusive minimum", -1, true},
  };
  const json_t *limits[4] = {k->maximum, k->exclusive_maximum, k->minimum, k->exclusive_minimum};
  for(size_t i = 0; i < 4; i++) {
    if(!limits[i])
      continue;
    int cmp = num_cmp(inst, limits[i]);
    if(cmp == LIMITS[i].bad_sign || (LIMITS[i].or_equal && cmp == 0)) {
      ok = false;
      if(quiet(v))
        return false;
      number_text(inst, a, sizeof a);
      number_text(limits[i], b, sizeof b);
      report(v, k, LIMITS[i].keyword, "%s is %s %s", a, LIMITS[i].text, b);
    }
  }
  return ok;
}

static bool validate_chars(const struct node *k, const char *s, size_t len, struct vctx *v);

/* schema_regex_search, paid for from the budget: a match costs steps by the
 * subject's length, and a match that gives up (the pattern backtracks
 * catastrophically on this data) spends the whole budget, so the data is
 * refused at once instead of one give-up per string inside an anyOf. */
static int regex_search(struct vctx *v, const struct schema_regex *re, const char *s, size_t len)
{
  struct budget *b = v->budget;
  b->steps += len / 64;
  /* Each match is capped, but thousands of strings could each take most of
   * the cap: past 16 matches, the CPU time they take is watched too. */
  if(++b->regex_calls % 16 == 0) {
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    if(b->regex_calls == 16) {
      b->regex_t0 = now;
    } else if((now.tv_sec - b->regex_t0.tv_sec) * 1000000000LL +
                  (now.tv_nsec - b->regex_t0.tv_nsec) >
              SCHEMA_MAX_REGEX_NS) {
      b->exhausted = b->regex_slow = true;
      return -1;
    }
  }
  int m = schema_regex_search(re, s, len);
  if(m < 0)
    b->exhausted = b->regex_gave_up = true;
  return m;
}

static bool validate_string(const struct node *k, const json_t *inst, struct vctx *v)
{
  return validate_chars(k, json_string_value(inst), json_string_length(inst), v);
}

/* The string keywords (maxLength, minLength, pattern, format) on s[0..len). */
static bool validate_chars(const struct node *k, const char *s, size_t len, struct vctx *v)
{
  bool ok = true;
  /* A code point is 1 to 4 bytes: the byte length often decides alone. */
  bool count = (k->max_length >= 0 && len > (unsigned long long)k->max_length) ||
               (k->min_length >= 0 && (len + 3) / 4 < (unsigned long long)k->min_length);
  if(count) {
    size_t n = utf8_length(s, len);
    if(k->max_length >= 0 && n > (unsigned long long)k->max_length) {
      ok = false;
      if(quiet(v))
        return false;
      report(v, k, "maxLength", "string of %zu characters is longer than %lld", n, k->max_length);
    }
    if(k->min_length >= 0 && n < (unsigned long long)k->min_length) {
      ok = false;
      if(quiet(v))
        return false;
      report(v, k, "minLength", "string of %zu characters is shorter than %lld", n, k->min_length);
    }
  }
  if(k->pattern) {
    int m = regex_search(v, k->pattern, s, len);
    if(m != 1) {
      ok = false;
      if(quiet(v))
        return false;
      if(m < 0 && v->budget->regex_slow)
        ; /* out of pattern time: schema_validate says so once, at the end */
      else if(m < 0)
        report(v, k, "pattern", "pattern \"%.120s\" gave up (match limit)",
               schema_regex_source(k->pattern));
      else
        report(v, k, "pattern", "string does not match the pattern \"%.120s\"",
               schema_regex_source(k->pattern));
    }
  }
  if(k->format != SCHEMA_FORMAT_NONE && !schema_format_check(k->format, s, len)) {
    ok = false;
    if(quiet(v))
      return false;
    report(v, k, "format", "string is not a valid %s", schema_format_name(k->format));
  }
  return ok;
}

static bool validate_array(const struct node *k, const json_t *inst, struct vctx *v)
{
  bool ok = true;
  size_t n = json_array_size(inst);
  if(k->max_items >= 0 && n > (unsigned long long)k->max_items) {
    ok = false;
    if(quiet(v))
      return false;
    report(v, k, "maxItems", "array of %zu items has more than %lld", n, k->max_items);
  }
  if(k->min_items >= 0 && n < (unsigned long long)k->min_items) {
    ok = false;
    if(quiet(v))
      return false;
    report(v, k, "minItems", "array of %zu items has fewer than %lld", n, k->min_items);
  }
  if(k->unique_items) {
    size_t a = 0, b = 0;
    int u = unique_items(inst, &a, &b, v->budget);
    if(u != 1) {
      ok = false;
      if(quiet(v))
        return false;
      if(u < 0 && !v->budget->exhausted)
        report(v, k, "uniqueItems", "out of memory checking uniqueness");
      else if(u < 0)
        ; /* out of steps: schema_validate says so once, at the end */
      else
        report(v, k, "uniqueItems", "items %zu and %zu are equal", a, b);
    }
  }
  for(size_t i = 0; i < n && !full(v); i++) {
    const struct node *item = NULL;
    if(!k->items_is_tuple)
      item = k->items;
    else if(i < k->items_tuple.n)
      item = k->items_tuple.v[i];
    else
      item = k->additional_items;
    if(!item)
      continue;
    size_t saved = path_push_index(v, i);
    bool good = validate(item, json_array_get(inst, i), v);
    path_pop(v, saved);
    if(!good) {
      ok = false;
      if(quiet(v))
        return false;
    }
  }
  if(k->contains) {
    bool found = false;
    for(size_t i = 0; i < n && !found; i++)
      found = test(k->contains, json_array_get(inst, i), v);
    if(!found) {
      ok = false;
      if(quiet(v))
        return false;
      report(v, k, "contains", "no item matches the \"contains\" schema");
    }
  }
  return ok;
}

/* The index of key in k's sorted properties, or -1. */
static long find_property(const struct node *k, const char *key)
{
  size_t lo = 0, hi = k->property_count;
  while(lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = strcmp(key, k->properties[mid].key);
    if(!c)
      return (long)mid;
    if(c < 0)
      hi = mid;
    else
      lo = mid + 1;
  }
  return -1;
}

/* Checks a property name against a propertyNames schema, quietly. */
static bool property_name_ok(const struct node *k, const char *key, size_t klen, struct vctx *v)
{
  if(!k->string_only) { /* never set for boolean or $ref nodes */
    json_t *name = json_stringn_nocheck(key, klen);
    bool good = name && test(k, name, v);
    json_decref(name);
    return good;
  }
  if(!budget_spend(v->budget))
    return false;
  struct vctx q = {.budget = v->budget, .res = NULL, .depth = v->depth};
  return validate_chars(k, key, klen, &q);
}

static bool validate_object(const struct node *k, const json_t *inst, struct vctx *v)
{
  bool ok = true;
  size_t n = json_object_size(inst);
  if(k->max_properties >= 0 && n > (unsigned long long)k->max_properties) {
    ok = false;
    if(quiet(v))
      return false;
    report(v, k, "maxProperties", "object of %zu properties has more than %lld", n,
           k->max_properties);
  }
  if(k->min_properties >= 0 && n < (unsigned long long)k->min_properties) {
    ok = false;
    if(quiet(v))
      return false;
    report(v, k, "minProperties", "object of %zu properties has fewer than %lld", n,
           k->min_properties);
  }
  bool by_bits = quiet(v) && k->required_by_bits;
  uint64_t seen = 0;
  for(size_t i = 0; !by_bits && i < k->required_count; i++) {
    if(json_object_get(inst, k->required[i]))
      continue;
    ok = false;
    if(quiet(v))
      return false;
    report(v, k, "required", "missing required property \"%.100s\"", k->required[i]);
  }
  for(size_t i = 0; i < k->dependency_count && !full(v); i++) {
    const struct dep *d = &k->dependencies[i];
    if(!json_object_get(inst, d->key))
      continue;
    for(size_t j = 0; j < d->name_count; j++) {
      if(json_object_get(inst, d->names[j]))
        continue;
      ok = false;
      if(quiet(v))
        return false;
      report(v, k, "dependencies", "property \"%.80s\" requires property \"%.80s\"", d->key,
             d->names[j]);
    }
    if(d->schema && !validate(d->schema, inst, v)) {
      ok = false;
      if(quiet(v))
        return false;
    }
  }
  const char *key;
  const json_t *value;
  json_object_foreach((json_t *)inst, key, value)
  {
    if(full(v))
      break;
    size_t klen = json_object_iter_key_len(json_object_key_to_iter(key));
    bool matched = false;
    long pi = find_property(k, key);
    const struct node *p = pi >= 0 ? k->properties[pi].schema : NULL;
    if(pi >= 0 && pi < 64)
      seen |= 1ULL << pi;
    size_t saved = path_push(v, key, klen);
    if(p) {
      matched = true;
      if(!validate(p, value, v)) {
        ok = false;
        if(quiet(v))
          return false;
      }
    }
    for(size_t i = 0; i < k->pattern_property_count; i++) {
      int m = regex_search(v, k->pattern_properties[i].re, key, klen);
      if(m < 0) {
        ok = false;
        if(quiet(v))
          return false;
        if(!v->budget->regex_slow)
          report(v, k, "patternProperties", "pattern \"%.120s\" gave up (match limit)",
                 schema_regex_source(k->pattern_properties[i].re));
        continue;
      }
      if(!m)
        continue;
      matched = true;
      if(!validate(k->pattern_properties[i].schema, value, v)) {
        ok = false;
        if(quiet(v))
          return false;
      }
    }
    if(!matched && k->additional_properties) {
      if(k->additional_properties->boolean == 0) {
        ok = false;
        if(quiet(v))
          return false;
        report(v, k, "additionalProperties", "property \"%.100s\" is not allowed", key);
        path_pop(v, saved);
        continue;
      }
      if(!validate(k->additional_properties, value, v)) {
        ok = false;
        if(quiet(v))
          return false;
      }
    }
    path_pop(v, saved);
    if(k->property_names) {
      bool good = property_name_ok(k->property_names, key, klen, v);
      if(!good) {
        ok = false;
        if(quiet(v))
          return false;
        report(v, k, "propertyNames", "property name \"%.100s\" is not allowed", key);
      }
    }
  }
  if(by_bits && (seen & k->required_bits) != k->required_bits)
    return false; /* quiet: some required property is missing */
  return ok;
}

static bool validate_combinators(const struct node *k, const json_t *inst, struct vctx *v)
{
  bool ok = true;
  for(size_t i = 0; i < k->all_of.n && !full(v); i++) {
    if(!validate(k->all_of.v[i], inst, v)) {
      ok = false;
      if(quiet(v))
        return false;
    }
  }
  if(k->any_of.n) {
    bool any = false;
    for(size_t i = 0; i < k->any_of.n && !any; i++)
      any = test(k->any_of.v[i], inst, v);
    if(!any) {
      ok = false;
      if(quiet(v))
        return false;
      report(v, k, "anyOf", "value matches none of the %zu anyOf schemas", k->any_of.n);
    }
  }
  if(k->one_of.n) {
    size_t matches = 0, first = 0, second = 0;
    for(size_t i = 0; i < k->one_of.n && matches < 2; i++) {
      if(test(k->one_of.v[i], inst, v)) {
        if(!matches)
          first = i;
        else
          second = i;
        matches++;
      }
    }
    if(matches != 1) {
      ok = false;
      if(quiet(v))
        return false;
      if(matches)
        report(v, k, "oneOf", "value matches oneOf schemas %zu and %zu; exactly one must match",
               first, second);
      else
        report(v, k, "oneOf", "value matches none of the %zu oneOf schemas", k->one_of.n);
    }
  }
  if(k->not_ && test(k->not_, inst, v)) {
    ok = false;
    if(quiet(v))
      return false;
    report(v, k, "not", "value matches the \"not\" schema");
  }
  if(k->if_) {
    const struct node *branch = test(k->if_, inst, v) ? k->then_ : k->else_;
    if(branch && !validate(branch, inst, v)) {
      ok = false;
      if(quiet(v))
        return false;
    }
  }
  return ok;
}

/* Validates inst against k; records errors unless quiet. */
static bool validate(const struct node *k, const json_t *inst, struct vctx *v)
{
  if(!budget_spend(v->budget)) /* schema_validate reports it, once */
    return false;
  if(++v->depth > SCHEMA_MAX_DEPTH) {
    v->depth--;
    report(v, k, "", "subschemas nested deeper than %d levels", SCHEMA_MAX_DEPTH);
    return false;
  }
  bool ok = true;
  while(k->ref)
    k = k->ref;
  if(k->boolean >= 0) {
    ok = k->boolean;
    if(!ok)
      report(v, k, "", "no value is allowed here (schema false)");
    v->depth--;
    return ok;
  }
  unsigned t = instance_type(inst);
  if(k->types && !(k->types & t)) {
    char want[80];
    types_text(k->types, want, sizeof want);
    report(v, k, "type", "expected %s, got %s", want, type_name(inst));
    ok = false;
    if(quiet(v))
      goto out;
  }
  if(k->enum_values) {
    bool found = false;
    for(size_t i = 0; i < json_array_size(k->enum_values) && !found; i++)
      found = schema_json_equal(inst, json_array_get(k->enum_values, i));
    if(!found) {
      report(v, k, "enum", "value is not one of the %zu allowed values",
             json_array_size(k->enum_values));
      ok = false;
      if(quiet(v))
        goto out;
    }
  }
  if(k->has_const && !schema_json_equal(inst, k->const_value)) {
    report(v, k, "const", "value is not the constant the schema requires");
    ok = false;
    if(quiet(v))
      goto out;
  }
  bool good = true;
  if(t & T_NUMBER)
    good = validate_number(k, inst, v);
  else if(t & T_STRING)
    good = validate_string(k, inst, v);
  else if(t & T_ARRAY)
    good = validate_array(k, inst, v);
  else if(t & T_OBJECT)
    good = validate_object(k, inst, v);
  if(!good) {
    ok = false;
    if(quiet(v))
      goto out;
  }
  if(!validate_combinators(k, inst, v))
    ok = false;
out:
  v->depth--;
  return ok;
}

bool schema_validate(const struct schema *s, const json_t *instance, struct schema_result *res)
{
  struct budget budget = {.steps = 0};
  struct ipath path;
  struct vctx v = {.budget = &budget, .res = res, .path = res ? &path : NULL};
  path.buf[0] = '\0';
  path.len = path.want = 0;
  if(res) {
    res->count = 0;
    res->truncated = false;
  }
  bool ok = validate(s->root, instance, &v);
  /* An exhausted budget made some checks answer false, and `not` would turn
   * that into true: the verdict is "invalid", whatever came out. */
  if(budget.exhausted && res) {
    v.path->buf[0] = '\0';
    v.path->len = v.path->want = 0;
    if(budget.regex_gave_up)
      report(&v, s->root, "", "a pattern gave up on this data (match limit); the data is refused");
    else if(budget.regex_slow)
      report(&v, s->root, "", "patterns took more than %lld ms of CPU on this data; it is refused",
             SCHEMA_MAX_REGEX_NS / 1000000);
    else
      report(&v, s->root, "", "validation needs more than %d steps; the data is refused",
             SCHEMA_MAX_STEPS);
  }
  return ok && !budget.exhausted;
}
