// What the signed-out pages (sign-in, register, password reset) and the loading and error states say: loaded first.
const messages = {
  common: {
    actions: "Действия", add: "Добавить", all: "Все", apply: "Применить", cancel: "Отмена", close: "Закрыть", delete: "Удалить",
    loading: "Загрузка…", no: "Нет", yes: "Да", notification: "Уведомления", reset: "Сбросить", retry: "Повторить", save: "Сохранить",
  },
  header: { theme: "Тема", language: "Язык", user_menu: "Меню учётной записи", sign_out: "Выйти" },
  theme: { light: "Светлая", dark: "Тёмная", system: "Как в системе" },
  role: { user: "Пользователь", admin: "Администратор" },
  errors: {
    generic: "Что-то пошло не так.", generic_hint: "Проверьте введённые данные и попробуйте ещё раз.",
    forbidden_hint: "У вас нет доступа. Если он нужен, обратитесь к администратору.",
    not_found_hint: "Возможно, объект удалён или ссылка неверна.",
    server_hint: "Сервер не ответил. Повторите попытку чуть позже; если ошибка повторяется, сообщите администратору.",
    request_id: "Идентификатор запроса: {{id}}",
    page_not_found: "Такой страницы нет", page_not_found_hint: "Проверьте адрес или вернитесь на главную.",
    no_app_access: "У вас нет доступа к этому приложению", no_app_access_hint: "Администратор может его выдать. Доступные приложения — на странице «Приложения».",
  },
  auth: {
    email_or_username: "Эл. почта или имя пользователя", username_optional: "Имя пользователя (необязательно)",
    username_hint: "3–50 букв, цифр, точек, дефисов или подчёркиваний; входите по нему или по эл. почте.",
    sign_in_passkey: "Войти с ключом доступа", sign_in_with: "Войти через {{name}}",
    sign_in_title: "Вход", sign_in_description: "С возвращением в Atrium.", sign_in: "Войти", signing_in: "Входим…",
    email: "Эл. почта", password: "Пароль", remember_me: "Запомнить меня", forgot_link: "Забыли пароль?",
    no_account: "Ещё нет учётной записи?", register_link: "Создать", have_account: "Уже есть учётная запись?",
    register_title: "Создание учётной записи", register_description: "Это займёт минуту.", full_name: "Полное имя (необязательно)",
    confirm_password: "Повторите пароль", mismatch: "Пароли не совпадают.", create_account: "Создать учётную запись", creating: "Создаём…",
    forgot_title: "Забыли пароль?", forgot_description: "Укажите адрес почты, и мы пришлём ссылку для нового пароля.",
    send_link: "Отправить ссылку", forgot_sent: "Если учётная запись {{email}} существует, ссылка для сброса пароля уже в пути. Проверьте почту.",
    back_to_sign_in: "Вернуться ко входу", reset_title: "Новый пароль", reset_description: "Придумайте новый пароль для учётной записи.",
    new_password: "Новый пароль", set_password: "Сохранить пароль", missing_token: "Ссылка неполная: откройте ссылку из письма ещё раз.",
    verify_title: "Подтверждение почты", verifying: "Проверяем…", verified: "Адрес почты подтверждён. Спасибо!", continue: "Продолжить",
    reason_revoked: "Ваш сеанс завершён. Войдите снова.", reason_expired: "Срок сеанса истёк. Войдите снова.",
    reason_signed_out: "Вы вышли из системы.", reason_registered: "Учётная запись создана. Подтвердите почту по ссылке из письма и войдите.",
    reason_reset: "Пароль изменён. Войдите с новым паролем.", reason_verified: "Почта подтверждена. Можно войти.",
  },
  password: {
    rules_title: "Пароль должен:", rule_min_length: "содержать не менее {{min}} символов", rule_max_length: "содержать не более {{max}} символов",
    rule_no_email: "не содержать имя из адреса почты", rule_common: "не быть распространённым паролем (проверяется при отправке)",
    met: "выполнено", not_met: "пока не выполнено", server_verdict: "Сервер не принял этот пароль:",
  },
  shared_link: {
    title: "Документ по ссылке", hint: "С вами поделились этим документом по ссылке.",
    password_needed: "Ссылка защищена паролем.", password: "Пароль", open: "Открыть",
    download: "Скачать", previews: "Страницы", page: "Страница {{number}}", no_previews: "Превью страниц пока нет.",
    pages_one: "{{count}} страница", pages_few: "{{count}} страницы", pages_many: "{{count}} страниц", pages_other: "{{count}} страницы",
    expires: "Доступно до {{date}}",
  },
};

export default messages;
