/* main.c -- placeholder until src/core lands. */
int main(void) { return 0; }
