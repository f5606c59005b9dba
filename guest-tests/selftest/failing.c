/* Runner self-test guest: one passing and two failing assertions. */
#include "libtest.h"

void test_main(void)
{
	report(true, "this one passes");
	report(false, "this one fails on purpose");
	report(1 + 1 == 3, "so does this one");
}
