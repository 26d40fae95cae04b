/*
 * /faye/client.js: pages of the faye era include this script before the actionhero client. The client no longer needs
 * faye (it carries its own transports), so this script only has to load; it defines nothing.
 */
