#include "CURCUCDS.h"
