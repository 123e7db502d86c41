#define _GNU_SOURCE
#include "CLockdepThread.h"

#include <dlfcn.h>
#include <link.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

__thread void *clockdep_current_thread_state;
__thread uintptr_t clockdep_current_thread_identity;

uintptr_t clockdep_thread_identity_assign(void) {
    static uintptr_t next;
    uintptr_t identity = (__atomic_add_fetch(&next, 1, __ATOMIC_RELAXED)) << 1;
    clockdep_current_thread_identity = identity;
    return identity;
}

struct clockdep_state_line clockdep_state;
_Static_assert(sizeof(struct clockdep_state_line) == 64, "the state word fills its cache line");
_Static_assert(sizeof(struct clockdep_map_cell_line) == 64, "a cell line fills its cache line");
uint8_t clockdep_task_checks = 1;

/* ---- the runtime's current-task slot (see clockdep_task_slot_for_current_thread) ---- */

typedef void *(*clockdep_tls_get_addr_fn)(void *index);

static pthread_once_t task_slot_once = PTHREAD_ONCE_INIT;
static void *task_slot_index;          /* the runtime's tls_index for its current-task variable */
static int32_t task_slot_offset;       /* the load's displacement from __tls_get_addr's answer */
static clockdep_tls_get_addr_fn task_slot_get_addr;

static int32_t read_i32(const unsigned char *p) {
    int32_t v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* Accepts only `push %rbp; mov %rsp,%rbp; lea d(%rip),%rdi; call r; mov o(%rax),%rax; pop %rbp; ret`
 * (o as 8-bit or 32-bit displacement) whose call lands on a PLT stub `jmp *g(%rip)` whose GOT
 * entry holds the dynamic linker's __tls_get_addr. Anything else: no slot, calls are used. */
static void find_task_slot(void) {
#if defined(__x86_64__)
    /* Resolve lazily bound PLT entries before reading them. */
    (void)swift_task_getCurrent();
    const unsigned char *f = dlsym(RTLD_DEFAULT, "swift_task_getCurrent");
    clockdep_tls_get_addr_fn get_addr = (clockdep_tls_get_addr_fn)dlsym(RTLD_DEFAULT, "__tls_get_addr");
    if (!f || !get_addr) return;
    static const unsigned char prologue[] = {0x55, 0x48, 0x89, 0xe5, 0x48, 0x8d, 0x3d};
    if (memcmp(f, prologue, sizeof prologue) != 0) return;
    const unsigned char *index = f + 11 + read_i32(f + 7);
    if (f[11] != 0xe8) return;
    const unsigned char *callee = f + 16 + read_i32(f + 12);
    int32_t offset;
    const unsigned char *rest;
    if (f[16] == 0x48 && f[17] == 0x8b && f[18] == 0x80) { offset = read_i32(f + 19); rest = f + 23; }
    else if (f[16] == 0x48 && f[17] == 0x8b && f[18] == 0x40) { offset = (int8_t)f[19]; rest = f + 20; }
    else return;
    if (rest[0] != 0x5d || rest[1] != 0xc3) return;
    if (callee[0] != 0xff || callee[1] != 0x25) return;
    void *const *got = (void *const *)(callee + 6 + read_i32(callee + 2));
    if (*got != (void *)get_addr) return;
    task_slot_offset = offset;
    task_slot_get_addr = get_addr;
    task_slot_index = (void *)index;
#endif
}

void *const clockdep_unknown_task_slot = (void *)1;

void *const *clockdep_task_slot_for_current_thread(void) {
    pthread_once(&task_slot_once, find_task_slot);
    if (!task_slot_index) return &clockdep_unknown_task_slot;
    void *const *slot = (void *const *)((char *)task_slot_get_addr(task_slot_index) + task_slot_offset);
    return *slot == swift_task_getCurrent() ? slot : &clockdep_unknown_task_slot;
}

/* ---- naming a report's stack frames ----------------------------------------- */

/* Whether /proc/self/exe can be opened (no /proc in some containers: then argv[0], as dladdr
   gives it, is the best there is). Asked once; a race only asks twice. */
static int self_exe_readable(void) {
    static int known; /* 0: not asked, 1: readable, 2: not */
    int answer = __atomic_load_n(&known, __ATOMIC_RELAXED);
    if (answer == 0) {
        answer = access("/proc/self/exe", R_OK) == 0 ? 1 : 2;
        __atomic_store_n(&known, answer, __ATOMIC_RELAXED);
    }
    return answer == 1;
}

int clockdep_image_of(const void *address, const char **path, uintptr_t *base, const char **symbol,
                      uintptr_t *symbol_address) {
    Dl_info info;
    struct link_map *map = NULL;
    if (dladdr1(address, &info, (void **)&map, RTLD_DL_LINKMAP) == 0) return 0;
    /* glibc names the main program by argv[0], which is relative to the directory it was
       started in, or a bare name found on PATH, or whatever the program wrote there: open
       the running executable itself instead (it stays readable even when deleted or replaced). */
    int is_main = map != NULL && map->l_name != NULL && map->l_name[0] == '\0';
    *path = is_main && self_exe_readable() ? "/proc/self/exe" : info.dli_fname;
    *base = (uintptr_t)info.dli_fbase;
    *symbol = info.dli_sname;
    *symbol_address = (uintptr_t)info.dli_saddr;
    return 1;
}
