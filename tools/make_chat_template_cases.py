"""Expected prompts of real chat templates, rendered as transformers' apply_chat_template does (jinja2 with
trim_blocks and lstrip_blocks, add_generation_prompt=True, raise_exception defined), for ChatTemplateTest.
Run with /usr/bin/python3 (jinja2 3.x); writes wafer-core/src/test/resources/fixtures/chat-templates/cases.json."""
import json
from jinja2.sandbox import ImmutableSandboxedEnvironment

TEMPLATES = {
    # ChatML (Qwen, many fine-tunes)
    "chatml": "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}",
    # Zephyr: eos_token after each turn, whitespace control
    "zephyr": "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}",
    # Llama 2: a system message folded into the first user turn, alternation enforced with raise_exception
    "llama2": "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}",
}
CONVERSATIONS = [
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello there"},
     {"role": "assistant", "content": "Hi! How can I help?"}, {"role": "user", "content": "  Name a tree.  "}],
    [{"role": "user", "content": "One line only"}],
]

def raise_exception(message):
    raise ValueError(message)

env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
env.globals["raise_exception"] = raise_exception
cases = []
for name, t in TEMPLATES.items():
    for i, conv in enumerate(CONVERSATIONS):
        out = env.from_string(t).render(messages=conv, add_generation_prompt=True, bos_token="<s>", eos_token="</s>")
        cases.append({"template": name, "source": t, "messages": conv, "expected": out})
bad = [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]
json.dump({"bos_token": "<s>", "eos_token": "</s>", "cases": cases,
           "refused": {"template": "llama2", "source": TEMPLATES["llama2"], "messages": bad,
                       "message": "Conversation roles must alternate user/assistant/user/assistant/..."}},
          open("wafer-core/src/test/resources/fixtures/chat-templates/cases.json", "w"), indent=1)
print(len(cases), "cases")
