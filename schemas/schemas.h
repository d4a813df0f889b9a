#ifndef HERALD_SCHEMAS_H
#define HERALD_SCHEMAS_H

/* The JSON Schema validator lands with its own issue; this module holds the
 * schema documents for now and reports its version so the target links. */
const char *schema_module_version(void);

#endif
