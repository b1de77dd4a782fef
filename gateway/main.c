/* placeholder until the command dispatcher lands */
int main(void)
{
    return 2;
}
