/* A shared object without actiongate_module_init: the node refuses to boot. */
int not_a_module(void)
{
    return 0;
}
