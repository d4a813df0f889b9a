#include "webhooks.h"

int hook_endpoint_count(void)
{
  return 0;
}
