/* Runner self-test guest: dies in a triple fault before reporting END. */
#include "libtest.h"

void test_main(void)
{
	struct {
		u16 limit;
		u64 base;
	} __attribute__((packed)) empty = { 0, 0 };

	report(true, "one assertion before the triple fault");
	asm volatile("lidt %0; int3" :: "m"(empty));
}
