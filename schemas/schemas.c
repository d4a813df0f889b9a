#include "schemas.h"

const char *schema_module_version(void)
{
  return "draft-07 (validator not built yet)";
}
