#include <cstdio>
int main() { std::puts("diguectl: not built yet"); return 1; }
