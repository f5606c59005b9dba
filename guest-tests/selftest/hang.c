/* Runner self-test guest: reports once, then never finishes. */
#include "libtest.h"

void test_main(void)
{
	report(true, "one assertion before hanging");
	for (;;)
		asm volatile("pause");
}
