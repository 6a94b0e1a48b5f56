/*===- chat_templates.h - Chat templates of the tests ---------------*- C -*-===*
 *
 * Part of bitnet-mlir.
 *
 *===----------------------------------------------------------------------===*
 *
 * The Jinja text of the chat templates the runtime knows, as the models'
 * tokenizer_config.json files hold them once their JSON is decoded (a Jinja
 * string's "\n" is a backslash and an n, written "\\n" here), and one it
 * does not know. For the test models (models/tokenizer_decoder.c) and the
 * template tests (chat_test.cc).
 *
 *===----------------------------------------------------------------------===*/

#ifndef BITNET_RT_TESTS_CHAT_TEMPLATES_H
#define BITNET_RT_TESTS_CHAT_TEMPLATES_H

/* microsoft/bitnet-b1.58-2B-4T. */
#define TEST_TEMPLATE_BITNET                                                   \
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% "    \
  "set content = message['role'] | capitalize + ': '+ message['content'] | "   \
  "trim + '<|eot_id|>' %}{{ content }}{% endfor %}{% if "                      \
  "add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}"

/* meta-llama/Meta-Llama-3-8B-Instruct (its "\n\n" are line breaks in the
 * JSON, so real ones in the template). */
#define TEST_TEMPLATE_LLAMA3                                                   \
  "{% set loop_messages = messages %}{% for message in loop_messages %}{% "    \
  "set content = '<|start_header_id|>' + message['role'] + "                   \
  "'<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% "    \
  "if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif "     \
  "%}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ "               \
  "'<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"

/* meta-llama/Llama-3.1-8B-Instruct, tool calls and all. */
#define TEST_TEMPLATE_LLAMA3_1                                                 \
  "{{- bos_token }}\n"                                                         \
  "{%- if custom_tools is defined %}\n"                                        \
  "    {%- set tools = custom_tools %}\n"                                      \
  "{%- endif %}\n"                                                             \
  "{%- if not tools_in_user_message is defined %}\n"                           \
  "    {%- set tools_in_user_message = true %}\n"                              \
  "{%- endif %}\n"                                                             \
  "{%- if not date_string is defined %}\n"                                     \
  "    {%- set date_string = \"26 Jul 2024\" %}\n"                             \
  "{%- endif %}\n"                                                             \
  "{%- if not tools is defined %}\n"                                           \
  "    {%- set tools = none %}\n"                                              \
  "{%- endif %}\n"                                                             \
  "\n"                                                                         \
  "{#- This block extracts the system message, so we can slot it into the "    \
  "right place. #}\n"                                                          \
  "{%- if messages[0]['role'] == 'system' %}\n"                                \
  "    {%- set system_message = messages[0]['content']|trim %}\n"              \
  "    {%- set messages = messages[1:] %}\n"                                   \
  "{%- else %}\n"                                                              \
  "    {%- set system_message = \"\" %}\n"                                     \
  "{%- endif %}\n"                                                             \
  "\n"                                                                         \
  "{#- System message + builtin tools #}\n"                                    \
  "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"              \
  "{%- if builtin_tools is defined or tools is not none %}\n"                  \
  "    {{- \"Environment: ipython\\n\" }}\n"                                   \
  "{%- endif %}\n"                                                             \
  "{%- if builtin_tools is defined %}\n"                                       \
  "    {{- \"Tools: \" + builtin_tools | reject('equalto', "                   \
  "'code_interpreter') | join(\", \") + \"\\n\\n\"}}\n"                        \
  "{%- endif %}\n"                                                             \
  "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"                      \
  "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"                       \
  "{%- if tools is not none and not tools_in_user_message %}\n"                \
  "    {{- \"You have access to the following functions. To call a "           \
  "function, please respond with JSON for a function call.\" }}\n"             \
  "    {{- 'Respond in the format {\"name\": function name, \"parameters\": "  \
  "dictionary of argument name and its value}.' }}\n"                          \
  "    {{- \"Do not use variables.\\n\\n\" }}\n"                               \
  "    {%- for t in tools %}\n"                                                \
  "        {{- t | tojson(indent=4) }}\n"                                      \
  "        {{- \"\\n\\n\" }}\n"                                                \
  "    {%- endfor %}\n"                                                        \
  "{%- endif %}\n"                                                             \
  "{{- system_message }}\n"                                                    \
  "{{- \"<|eot_id|>\" }}\n"                                                    \
  "\n"                                                                         \
  "{#- Custom tools are passed in a user message with some extra guidance "    \
  "#}\n"                                                                       \
  "{%- if tools_in_user_message and not tools is none %}\n"                    \
  "    {#- Extract the first user message so we can plug it in here #}\n"      \
  "    {%- if messages | length != 0 %}\n"                                     \
  "        {%- set first_user_message = messages[0]['content']|trim %}\n"      \
  "        {%- set messages = messages[1:] %}\n"                               \
  "    {%- else %}\n"                                                          \
  "        {{- raise_exception(\"Cannot put tools in the first user message "  \
  "when there's no first user message!\") }}\n"                                \
  "{%- endif %}\n"                                                             \
  "    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}\n"             \
  "    {{- \"Given the following functions, please respond with a JSON for a " \
  "function call \" }}\n"                                                      \
  "    {{- \"with its proper arguments that best answers the given "           \
  "prompt.\\n\\n\" }}\n"                                                       \
  "    {{- 'Respond in the format {\"name\": function name, \"parameters\": "  \
  "dictionary of argument name and its value}.' }}\n"                          \
  "    {{- \"Do not use variables.\\n\\n\" }}\n"                               \
  "    {%- for t in tools %}\n"                                                \
  "        {{- t | tojson(indent=4) }}\n"                                      \
  "        {{- \"\\n\\n\" }}\n"                                                \
  "    {%- endfor %}\n"                                                        \
  "    {{- first_user_message + \"<|eot_id|>\"}}\n"                            \
  "{%- endif %}\n"                                                             \
  "\n"                                                                         \
  "{%- for message in messages %}\n"                                           \
  "    {%- if not (message.role == 'ipython' or message.role == 'tool' or "    \
  "'tool_calls' in message) %}\n"                                             \
  "        {{- '<|start_header_id|>' + message['role'] + "                     \
  "'<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n"   \
  "    {%- elif 'tool_calls' in message %}\n"                                  \
  "        {%- if not message.tool_calls|length == 1 %}\n"                     \
  "            {{- raise_exception(\"This model only supports single "         \
  "tool-calls at once!\") }}\n"                                                \
  "        {%- endif %}\n"                                                     \
  "        {%- set tool_call = message.tool_calls[0].function %}\n"            \
  "        {%- if builtin_tools is defined and tool_call.name in "             \
  "builtin_tools %}\n"                                                         \
  "            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n" \
  "            {{- \"<|python_tag|>\" + tool_call.name + \".call(\" }}\n"      \
  "            {%- for arg_name, arg_val in tool_call.arguments | items %}\n"  \
  "                {{- arg_name + '=\"' + arg_val + '\"' }}\n"                 \
  "                {%- if not loop.last %}\n"                                  \
  "                    {{- \", \" }}\n"                                        \
  "                {%- endif %}\n"                                             \
  "                {%- endfor %}\n"                                            \
  "            {{- \")\" }}\n"                                                 \
  "        {%- else  %}\n"                                                     \
  "            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}\n" \
  "            {{- '{\"name\": \"' + tool_call.name + '\", ' }}\n"             \
  "            {{- '\"parameters\": ' }}\n"                                    \
  "            {{- tool_call.arguments | tojson }}\n"                          \
  "            {{- \"}\" }}\n"                                                 \
  "        {%- endif %}\n"                                                     \
  "        {%- if builtin_tools is defined %}\n"                               \
  "            {#- This means we're in ipython mode #}\n"                      \
  "            {{- \"<|eom_id|>\" }}\n"                                        \
  "        {%- else %}\n"                                                      \
  "            {{- \"<|eot_id|>\" }}\n"                                        \
  "        {%- endif %}\n"                                                     \
  "    {%- elif message.role == \"tool\" or message.role == \"ipython\" %}\n"  \
  "        {{- \"<|start_header_id|>ipython<|end_header_id|>\\n\\n\" }}\n"     \
  "        {%- if message.content is mapping or message.content is iterable "  \
  "%}\n"                                                                       \
  "            {{- message.content | tojson }}\n"                              \
  "        {%- else %}\n"                                                      \
  "            {{- message.content }}\n"                                       \
  "        {%- endif %}\n"                                                     \
  "        {{- \"<|eot_id|>\" }}\n"                                            \
  "    {%- endif %}\n"                                                         \
  "{%- endfor %}\n"                                                            \
  "{%- if add_generation_prompt %}\n"                                          \
  "    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n"         \
  "{%- endif %}\n"

/* ChatML (Qwen, ...): not one the runtime knows. */
#define TEST_TEMPLATE_CHATML                                                   \
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' "   \
  "+ message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if "            \
  "add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"

#endif /* BITNET_RT_TESTS_CHAT_TEMPLATES_H */
