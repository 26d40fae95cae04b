'use strict';
// Actions of the fixture app that use actionhero's chat and cluster RPC from app code: what spec/actionhero/chat.test.js
// calls to reach connections held by actiongate nodes.
const { Action, api, chatRoom, redis } = require('actionhero');

function action(name, inputs, run) {
  return class extends Action {
    constructor() {
      super();
      this.name = name;
      this.description = name;
      this.inputs = inputs;
    }
    async run({ params }) {
      return run(params);
    }
  };
}

const required = { required: true };

module.exports = {
  ChatBroadcast: action('chatBroadcast', { room: required, message: required }, async ({ room, message }) => {
    await api.chatRoom.broadcast({}, room, message);
    return { broadcast: true };
  }),
  ChatAddMember: action('chatAddMember', { id: required, room: required }, async ({ id, room }) => ({
    result: await chatRoom.addMember(id, room),
  })),
  ChatRemoveMember: action('chatRemoveMember', { id: required, room: required }, async ({ id, room }) => ({
    result: await chatRoom.removeMember(id, room),
  })),
  ChatRoomStatus: action('chatRoomStatus', { room: required }, async ({ room }) => chatRoom.roomStatus(room)),
  ChatDestroyRoom: action('chatDestroyRoom', { room: required }, async ({ room }) => {
    await chatRoom.destroy(room);
    return { destroyed: true };
  }),
  // api.connections.apply(id, method, args): sendMessage when message is given, else only the connection's description
  ConnectionApply: action('connectionApply', { id: required, method: { required: false }, message: { required: false } },
    async ({ id, method, message }) => ({ result: await api.connections.apply(id, method, message) })),
  // a raw RPC on a connection: what answers a method no node serves
  ClusterRpc: action('clusterRpc', { id: required, method: required }, async ({ id, method }) => ({
    result: await redis.doCluster(method, [id], id, true),
  })),
};
