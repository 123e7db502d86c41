#include "CReferenceReadCount.h"

__thread unsigned long creference_urcu_reads __attribute__((tls_model("local-exec")));
