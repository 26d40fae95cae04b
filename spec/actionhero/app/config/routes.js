'use strict';
// Besides AUTOMATIC_ROUTES=post (POST /api/<action> for every action), the GET routes a generated project has.
exports.DEFAULT = {
  routes: () => ({
    get: [
      { path: '/status', action: 'status' },
      { path: '/swagger', action: 'swagger' },
    ],
  }),
};
