// The strings every app shows: signing in and out, the language switch, units, and MapLibre's own
// control labels. Each app registers its own beside these (see i18n.js).
export const SHARED_STRINGS = {
  en: {
    sign_in_title: 'Sign in', token: 'Access token', sign_in: 'Sign in', sign_out: 'Sign out',
    bad_token: 'This token is not valid.', server_unreachable: 'The server could not be reached; try again.',
    language: 'Language', none: 'none', s: 's', m: 'm', min: 'min',
    zoom_in: 'Zoom in', zoom_out: 'Zoom out', reset_bearing: 'Reset bearing to north', attribution: 'Toggle attribution',
    close: 'Close',
  },
  zh: {
    sign_in_title: '登录', token: '访问令牌', sign_in: '登录', sign_out: '退出',
    bad_token: '令牌无效。', server_unreachable: '无法连接服务器，请重试。',
    language: '语言', none: '无', s: '秒', m: '米', min: '分钟',
    zoom_in: '放大', zoom_out: '缩小', reset_bearing: '指北', attribution: '显示或隐藏署名',
    close: '关闭',
  },
};
