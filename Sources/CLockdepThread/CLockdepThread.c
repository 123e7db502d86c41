#include "CLockdepThread.h"

__thread void *clockdep_current_thread_state;
uintptr_t clockdep_state_word;
