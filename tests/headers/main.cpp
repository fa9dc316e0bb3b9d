// syncvault_header_tests: the point is that every generated translation unit compiled and that
// they linked together; running it only reports that.
#include <cstdio>

int main()
{
    std::puts("every syncvault header compiles alone and links with the others");
}
